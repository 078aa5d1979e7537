console.log(Connection.currentFeatureName);
runAction("sms.send_me_text", { user_feature_id: Connection.userFeatureId });

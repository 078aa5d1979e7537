// Every constant of IFTTT's JavaScript API table.
console.log(Meta.currentUserTime.format("YYYY-MM-DD HH:mm Z z"));
console.log(Trigger.id);
console.log(Trigger.ingredients.device_name);
console.log(Connection.serviceUserId);
console.log(Connection.currentFeatureName);
console.log(Connection.userFeatureId);
console.log(Connection.configuration.foo);

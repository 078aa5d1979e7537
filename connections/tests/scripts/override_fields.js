runAction("sms.send_me_text", { fields: { message: "overriden" } });
performQuery("smarthome.list_devices", { fields: { room: "Kitchen" } });

performQuery("smarthome.list_devices", { limit: 3 });

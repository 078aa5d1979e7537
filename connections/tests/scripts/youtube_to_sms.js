// IFTTT's YouTube → SMS example, on this service's catalog: when a device switches on, find the
// other devices in its room and text one line per device.
const room = Trigger.ingredients.room;

const promise = performQuery("smarthome.list_devices", { fields: { room: room }, limit: 3 });

promise.then((response) => {
  response.responseBody.data.forEach(device => {
    runAction("sms.send_me_text", { fields: { message: `${device.device_name} in ${device.room} is ${device.is_on ? "on" : "off"}` } });
  });
});

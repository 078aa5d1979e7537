// The demo connection's runtime script: when a light switches on, set the hall light's colour (the
// user's choice, or the connection's when its field configuration sets one), then text the person.
// Node.js 12, as IFTTT runs scripts, has no top-level await: the steps run in an async function.
(async () => {
  const name = Trigger.ingredients.device_name;
  const lit = await runAction("smarthome.set_light_color");
  console.log(`hall light: ${lit.statusCode}`);
  const rooms = await performQuery("smarthome.list_devices", { fields: { room: "Hallway" } });
  const names = rooms.responseBody.data.map((device) => device.device_name).join(", ");
  await runAction("sms.send_me_text", { fields: { message: `${name} switched on; in the hallway: ${names}` } });
})();

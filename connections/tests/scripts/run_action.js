runAction("sms.send_me_text")
  .then((response) => { console.log("action answered", response.statusCode); });

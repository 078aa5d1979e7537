// A script that copes with a refused action, as an author tests with --answer sms.send_me_text=422.
runAction("sms.send_me_text", { fields: { message: "hello" } }).then((response) => {
  if (response.statusCode >= 400) {
    console.warn("not sent:", response.responseBody.code);
    return runAction("email.send_me_email", { fields: { subject: "hello" } });
  }
});

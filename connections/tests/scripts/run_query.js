performQuery("smarthome.list_devices")
  .then((response) => { console.log("query answered", response.statusCode, response.responseBody.data.length); });

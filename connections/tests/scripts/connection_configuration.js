console.log(Connection.configuration.foo);

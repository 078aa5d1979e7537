// The runtime-script environment, installed in every fresh V8 context before a script runs.
//
// Scripts see what IFTTT documents (Meta, Trigger, Connection, runAction, performQuery) plus
// console and timers. runAction/performQuery cannot reach the host directly: they queue a call and
// return a pending Promise; the host reads the queue between turns, makes the Connect API call and
// settles the Promise, so `.then` chains and `await` behave as they do in Node.
(function (global) {
  "use strict";

  // Nothing in a script needs raw memory, and ArrayBuffer backing stores live outside the V8 heap
  // (so outside its memory cap): remove every way to allocate one.
  const unsafe = [
    "ArrayBuffer", "SharedArrayBuffer", "DataView", "Atomics", "WebAssembly",
    "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array",
    "Uint32Array", "Float16Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array",
    "__timer_manager", "setTimeout", "clearTimeout",
  ];
  for (const name of unsafe) {
    // mini-racer declares its timer helpers with `var`, which cannot be deleted, only emptied.
    try {
      delete global[name];
    } catch (e) {
      global[name] = undefined;
    }
  }

  const MAX_CALLS = 50;
  const MAX_LOG_LINES = 500;
  const MAX_LOG_CHARS = 64 * 1024;

  const queued = [];
  const waiting = new Map();
  let calls = 0;
  const logs = [];
  let logChars = 0;
  let logsDropped = 0;
  const timers = new Map();
  let nextTimer = 1;
  const errors = [];

  // An error thrown in a `.then` callback rejects a Promise nobody may be watching: Node only warns,
  // and it would be lost. Track callbacks that threw, and report those whose Promise never got a
  // handler (`.then`/`.catch`/`Promise.all` all go through `then`; only a bare `await` does not).
  const originalThen = Promise.prototype.then;
  const handled = new WeakSet();
  const thrown = [];
  function watch(callback, holder) {
    if (typeof callback !== "function") return callback;
    return function (value) {
      try {
        return callback(value);
      } catch (e) {
        holder.error = e;
        throw e;
      }
    };
  }
  Object.defineProperty(Promise.prototype, "then", {
    value: function then(onFulfilled, onRejected) {
      handled.add(this);
      const holder = { error: undefined, promise: null };
      const derived = originalThen.call(this, watch(onFulfilled, holder), watch(onRejected, holder));
      holder.promise = derived;
      thrown.push(holder);
      return derived;
    },
    writable: true,
    configurable: true,
  });

  function describe(value) {
    if (typeof value === "string") return value;
    if (value instanceof Error) return value.stack || String(value);
    if (value === undefined) return "undefined";
    if (typeof value === "function") return "[Function " + (value.name || "anonymous") + "]";
    try {
      const text = JSON.stringify(value);
      return text === undefined ? String(value) : text;
    } catch (e) {
      return String(value);
    }
  }

  function log(level, args) {
    const line = Array.prototype.map.call(args, describe).join(" ");
    if (logs.length >= MAX_LOG_LINES || logChars + line.length > MAX_LOG_CHARS) {
      logsDropped += 1;
      return;
    }
    logChars += line.length;
    logs.push({ level: level, message: line });
  }

  const console = Object.freeze({
    log: function () { log("log", arguments); },
    info: function () { log("info", arguments); },
    debug: function () { log("debug", arguments); },
    warn: function () { log("warn", arguments); },
    error: function () { log("error", arguments); },
  });

  function hostCall(kind, fnName, id, body) {
    if (typeof id !== "string" || id === "") {
      return Promise.reject(new TypeError(fnName + " needs an id such as \"service.slug\", got " + describe(id)));
    }
    let payload;
    try {
      payload = body === undefined || body === null ? {} : JSON.parse(JSON.stringify(body));
    } catch (e) {
      return Promise.reject(new TypeError(fnName + ": the request body must be plain JSON data (" + e.message + ")"));
    }
    if (payload === null || typeof payload !== "object" || Array.isArray(payload)) {
      return Promise.reject(new TypeError(fnName + ": the request body must be an object such as {fields: {...}}"));
    }
    if (calls >= MAX_CALLS) {
      return Promise.reject(new Error(fnName + ": this run already made " + MAX_CALLS + " Connect API calls, the most one run may make"));
    }
    calls += 1;
    const seq = calls;
    return new Promise(function (resolve, reject) {
      waiting.set(seq, { resolve: resolve, reject: reject });
      queued.push({ seq: seq, kind: kind, id: id, body: payload });
    });
  }

  function runAction(actionId, requestBody) {
    return hostCall("action", "runAction", actionId, requestBody);
  }

  function performQuery(queryId, requestBody) {
    return hostCall("query", "performQuery", queryId, requestBody);
  }

  function setTimeout(callback, delay) {
    if (typeof callback !== "function") throw new TypeError("setTimeout needs a function");
    const id = nextTimer++;
    const args = Array.prototype.slice.call(arguments, 2);
    timers.set(id, { due: Date.now() + Math.max(0, Number(delay) || 0), callback: callback, args: args });
    return id;
  }

  function clearTimeout(id) {
    timers.delete(id);
  }

  // --- Meta.currentUserTime: the moment.js methods scripts use, for one instant in one zone ---
  const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
  const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];

  function pad(n, width) {
    let s = String(Math.abs(n));
    while (s.length < width) s = "0" + s;
    return (n < 0 ? "-" : "") + s;
  }

  function ordinal(n) {
    const rem100 = n % 100;
    if (rem100 >= 11 && rem100 <= 13) return n + "th";
    return n + (["th", "st", "nd", "rd"][n % 10] || "th");
  }

  function offsetText(minutes, colon) {
    const sign = minutes < 0 ? "-" : "+";
    const abs = Math.abs(minutes);
    return sign + pad(Math.floor(abs / 60), 2) + (colon ? ":" : "") + pad(abs % 60, 2);
  }

  function UserTime(epochMs, offsetMinutes, zoneName) {
    this._ms = epochMs;
    this._offset = offsetMinutes;
    this._zone = zoneName;
    // The wall-clock fields, read through the UTC accessors of a shifted Date.
    this._local = new Date(epochMs + offsetMinutes * 60000);
  }

  const TOKENS = /\[([^\]]*)\]|YYYY|YY|MMMM|MMM|MM|M|Do|DD|D|dddd|ddd|dd|d|E|HH|H|hh|h|mm|m|ss|s|SSS|A|a|ZZ|Z|X|x|z/g;

  UserTime.prototype = {
    year: function () { return this._local.getUTCFullYear(); },
    month: function () { return this._local.getUTCMonth(); },
    date: function () { return this._local.getUTCDate(); },
    day: function () { return this._local.getUTCDay(); },
    weekday: function () { return this._local.getUTCDay(); },
    isoWeekday: function () { return this._local.getUTCDay() || 7; },
    hour: function () { return this._local.getUTCHours(); },
    hours: function () { return this._local.getUTCHours(); },
    minute: function () { return this._local.getUTCMinutes(); },
    minutes: function () { return this._local.getUTCMinutes(); },
    second: function () { return this._local.getUTCSeconds(); },
    seconds: function () { return this._local.getUTCSeconds(); },
    millisecond: function () { return this._local.getUTCMilliseconds(); },
    utcOffset: function () { return this._offset; },
    tz: function () { return this._zone; },
    valueOf: function () { return this._ms; },
    unix: function () { return Math.floor(this._ms / 1000); },
    toDate: function () { return new Date(this._ms); },
    toISOString: function () { return new Date(this._ms).toISOString(); },
    toJSON: function () { return new Date(this._ms).toISOString(); },
    clone: function () { return new UserTime(this._ms, this._offset, this._zone); },
    isBefore: function (other) { return this._ms < Number(other); },
    isAfter: function (other) { return this._ms > Number(other); },
    toString: function () { return this.format("ddd MMM DD YYYY HH:mm:ss [GMT]ZZ"); },
    format: function (pattern) {
      const self = this;
      const fmt = pattern === undefined ? "YYYY-MM-DDTHH:mm:ssZ" : String(pattern);
      return fmt.replace(TOKENS, function (token, literal) {
        if (literal !== undefined) return literal;
        const h = self.hour();
        switch (token) {
          case "YYYY": return pad(self.year(), 4);
          case "YY": return pad(self.year() % 100, 2);
          case "MMMM": return MONTHS[self.month()];
          case "MMM": return MONTHS[self.month()].slice(0, 3);
          case "MM": return pad(self.month() + 1, 2);
          case "M": return String(self.month() + 1);
          case "Do": return ordinal(self.date());
          case "DD": return pad(self.date(), 2);
          case "D": return String(self.date());
          case "dddd": return DAYS[self.day()];
          case "ddd": return DAYS[self.day()].slice(0, 3);
          case "dd": return DAYS[self.day()].slice(0, 2);
          case "d": return String(self.day());
          case "E": return String(self.isoWeekday());
          case "HH": return pad(h, 2);
          case "H": return String(h);
          case "hh": return pad(h % 12 || 12, 2);
          case "h": return String(h % 12 || 12);
          case "mm": return pad(self.minute(), 2);
          case "m": return String(self.minute());
          case "ss": return pad(self.second(), 2);
          case "s": return String(self.second());
          case "SSS": return pad(self.millisecond(), 3);
          case "A": return h < 12 ? "AM" : "PM";
          case "a": return h < 12 ? "am" : "pm";
          case "ZZ": return offsetText(self._offset, false);
          case "Z": return offsetText(self._offset, true);
          case "X": return String(self.unix());
          case "x": return String(self._ms);
          case "z": return self._zone;
        }
        return token;
      });
    },
  };

  function deepFreeze(value) {
    if (value && typeof value === "object") {
      Object.freeze(value);
      for (const key of Object.keys(value)) deepFreeze(value[key]);
    }
    return value;
  }

  // The host's handle on this context. Scripts can see it but gain nothing: it only settles their
  // own Promises and reports their own state; the host records calls on its side.
  const driver = {
    start: function (setupJson) {
      const setup = JSON.parse(setupJson);
      const time = new UserTime(setup.now_ms, setup.offset_minutes, setup.zone);
      define("Meta", deepFreeze({ currentUserTime: time }));
      define("Trigger", deepFreeze({ id: setup.trigger.id, ingredients: setup.trigger.ingredients }));
      define("Connection", deepFreeze({
        serviceUserId: setup.connection.serviceUserId,
        currentFeatureName: setup.connection.currentFeatureName,
        userFeatureId: setup.connection.userFeatureId,
        configuration: setup.connection.configuration,
      }));
      Object.freeze(UserTime.prototype);
      const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
      let main;
      try {
        main = new AsyncFunction(setup.script);
      } catch (e) {
        errors.push("The script does not compile: " + describe(e));
        return;
      }
      main().catch(function (e) { errors.push(describe(e)); });
    },
    state: function () {
      let due = null;
      for (const timer of timers.values()) {
        if (due === null || timer.due < due) due = timer.due;
      }
      const out = {
        calls: queued.splice(0, queued.length),
        logs: logs.splice(0, logs.length),
        wait_ms: due === null ? null : Math.max(0, due - Date.now()),
      };
      return JSON.stringify(out);
    },
    settle: function (resultsJson) {
      for (const result of JSON.parse(resultsJson)) {
        const entry = waiting.get(result.seq);
        if (!entry) continue;
        waiting.delete(result.seq);
        if (result.error !== undefined) {
          entry.reject(new Error(result.error));
        } else {
          entry.resolve({ statusCode: result.statusCode, responseBody: result.responseBody });
        }
      }
    },
    fireTimers: function () {
      const now = Date.now();
      const ready = Array.from(timers.entries()).filter(function (e) { return e[1].due <= now; });
      ready.sort(function (a, b) { return a[1].due - b[1].due || a[0] - b[0]; });
      for (const entry of ready) {
        if (!timers.has(entry[0])) continue;
        timers.delete(entry[0]);
        try {
          entry[1].callback.apply(undefined, entry[1].args);
        } catch (e) {
          errors.push(describe(e));
        }
      }
    },
    report: function () {
      for (const holder of thrown) {
        if (holder.error !== undefined && !handled.has(holder.promise)) {
          errors.push("Uncaught error in a Promise callback: " + describe(holder.error));
        }
      }
      return JSON.stringify({ logs: logs.splice(0, logs.length), logs_dropped: logsDropped, errors: errors, unsettled: waiting.size });
    },
  };

  function define(name, value) {
    Object.defineProperty(global, name, { value: value, writable: false, enumerable: false, configurable: false });
  }

  define("console", console);
  define("runAction", runAction);
  define("performQuery", performQuery);
  global.setTimeout = setTimeout;
  global.clearTimeout = clearTimeout;
  define("setImmediate", function (callback) { return setTimeout.apply(undefined, [callback, 0].concat(Array.prototype.slice.call(arguments, 1))); });
  define("clearImmediate", clearTimeout);
  define("__connectionsRuntime", Object.freeze(driver));
})(globalThis);

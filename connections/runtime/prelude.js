// The runtime-script environment, installed in every fresh V8 context before a script runs.
//
// Scripts see what IFTTT documents (Meta, Trigger, Connection, runAction, performQuery) plus
// console and timers, on a Node.js 12 baseline. runAction/performQuery cannot reach the host
// directly: they queue a call and return a pending Promise; the host reads the queue between turns,
// makes the Connect API call and settles the Promise, so `.then` chains and `await` behave as in Node.
//
// The script shares this context, and may replace any built-in it can reach (JSON.stringify,
// Array.prototype.*, Object.prototype setters, iterators, Symbol hooks...). So everything here that
// runs after the script starts uses only built-ins taken before it starts, keeps its state in
// prototype-less objects and primitive strings, and hands the host one string per turn that the
// host parses, checks and caps itself: nothing the script can reach decides what the host does.
//
// Evaluated by the sandbox with the placeholder below replaced by the host's limits, after
// moment.js and moment-timezone (which leave `moment` on the global object for us to take).
(function (global, LIMITS) {
  "use strict";

  // --- built-ins, taken before any script runs ---
  const apply = Reflect.apply;
  const defineProperty = Object.defineProperty;
  const freeze = Object.freeze;
  const objectKeys = Object.keys;
  const isArray = Array.isArray;
  const stringify = JSON.stringify;
  const parseJSON = JSON.parse;
  const toText = String;
  const dateNow = Date.now;
  const mathMax = Math.max;
  const NativePromise = Promise;
  const promiseThen = Promise.prototype.then;
  const promiseReject = Promise.reject;
  const regexpExec = RegExp.prototype.exec;
  const NativeError = Error;
  const NativeTypeError = TypeError;
  const weakSetAdd = WeakSet.prototype.add;
  const weakSetHas = WeakSet.prototype.has;
  const nativeEval = global.eval;
  const CALL_ID = new RegExp("^(?:" + LIMITS.call_id_pattern + ")$");
  const moment = global.moment;
  const momentTz = moment.tz;

  // The script's source is compiled as the body of this function, named so that its stack frames
  // can be told from the runtime's; the host maps positions back to the author's lines.
  const SCRIPT_PREFIX = "(function () {\n";
  const SCRIPT_SUFFIX = "\n})\n//# sourceURL=" + LIMITS.script_name;

  // Nothing in a script needs raw memory, and ArrayBuffer backing stores live outside the V8 heap
  // (so outside its memory cap): remove every way to allocate one. mini-racer's own timer helpers go
  // too (its `var`s cannot be deleted, only emptied); timers are ours, below.
  const unsafe = [
    "ArrayBuffer", "SharedArrayBuffer", "DataView", "Atomics", "WebAssembly",
    "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array",
    "Uint32Array", "Float16Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array",
    "__timer_manager", "setTimeout", "clearTimeout", "moment",
    // Newer than Node.js 12: a script using them would fail on IFTTT, so it fails here too.
    "AggregateError", "WeakRef", "FinalizationRegistry", "Iterator", "DisposableStack",
    "AsyncDisposableStack", "SuppressedError",
  ];
  for (const name of unsafe) {
    try {
      delete global[name];
    } catch (e) {
      global[name] = undefined;
    }
  }
  const newerMethods = [
    [Array.prototype, ["at", "findLast", "findLastIndex", "toReversed", "toSorted", "toSpliced", "with"]],
    [Array, ["fromAsync"]],
    [String.prototype, ["at", "replaceAll", "isWellFormed", "toWellFormed"]],
    [Object, ["hasOwn", "groupBy"]],
    [Map, ["groupBy"]],
    [Promise, ["any", "withResolvers", "try"]],
    [Set.prototype, ["union", "intersection", "difference", "symmetricDifference", "isSubsetOf",
      "isSupersetOf", "isDisjointFrom"]],
  ];
  for (const entry of newerMethods) {
    for (const name of entry[1]) delete entry[0][name];
  }

  // --- the run's state: prototype-less objects and primitive strings only ---
  let callsMade = 0;
  let callsText = "";
  const waiting = Object.create(null);
  let waitingCount = 0;
  let logLines = 0;
  let logChars = 0;
  let logsDropped = 0;
  let logsText = "";
  let errorsCount = 0;
  let errorsText = "";
  const timers = Object.create(null);
  let nextTimer = 1;

  function reportError(text) {
    if (errorsCount >= LIMITS.errors) return;
    errorsCount += 1;
    errorsText += (errorsText === "" ? "" : ",") + stringify(toText(text));
  }

  // An error thrown in a `.then` callback rejects a Promise nobody may be watching: Node 12 only
  // warns, and it would be lost. Track callbacks that threw, and report those whose Promise never got
  // a handler (`.then`/`.catch`/`Promise.all` all go through `then`; only a bare `await` does not).
  const handled = new WeakSet();
  const thrown = Object.create(null);
  let thrownCount = 0;
  function watch(callback, holder) {
    if (typeof callback !== "function") return callback;
    return function (value) {
      try {
        return callback(value);
      } catch (e) {
        holder.error = e;
        holder.threw = true;
        throw e;
      }
    };
  }
  defineProperty(Promise.prototype, "then", {
    value: function then(onFulfilled, onRejected) {
      apply(weakSetAdd, handled, [this]);
      const holder = { __proto__: null, threw: false, error: undefined, promise: null };
      const derived = apply(promiseThen, this, [watch(onFulfilled, holder), watch(onRejected, holder)]);
      holder.promise = derived;
      thrown[thrownCount++] = holder;
      return derived;
    },
    writable: true,
    configurable: true,
  });

  function describe(value) {
    if (typeof value === "string") return value;
    if (value === undefined) return "undefined";
    if (typeof value === "function") return "[Function " + (value.name || "anonymous") + "]";
    if (typeof value === "symbol" || typeof value === "bigint") return toText(value);
    if (value instanceof NativeError) {
      const stack = value.stack;
      return typeof stack === "string" ? stack : toText(value);
    }
    try {
      const text = stringify(value);
      return text === undefined ? toText(value) : text;
    } catch (e) {
      return toText(value);
    }
  }

  function log(level, args) {
    let line = "";
    for (let i = 0; i < args.length; i++) line += (i === 0 ? "" : " ") + toText(describe(args[i]));
    if (logLines >= LIMITS.log_lines || logChars + line.length > LIMITS.log_chars) {
      logsDropped += 1;
      return;
    }
    logLines += 1;
    logChars += line.length;
    logsText += (logsText === "" ? "" : ",") + '{"level":"' + level + '","message":' + stringify(line) + "}";
  }

  const console = freeze({
    log: function log_() { log("log", arguments); },
    info: function info() { log("info", arguments); },
    debug: function debug() { log("debug", arguments); },
    warn: function warn() { log("warn", arguments); },
    error: function error() { log("error", arguments); },
  });

  function rejected(error) {
    return apply(promiseReject, NativePromise, [error]);
  }

  function hostCall(kind, fnName, id, body) {
    if (typeof id !== "string" || apply(regexpExec, CALL_ID, [id]) === null) {
      const example = kind === "action" ? '"sms.send_me_text"' : '"youtube.get_videos_from_search"';
      return rejected(new NativeTypeError(
        fnName + " needs an id such as " + example + " (service.slug, lowercase letters, digits and _), got " +
        (typeof id === "string" ? stringify(id) : describe(id))
      ));
    }
    let bodyText = "{}";
    if (body !== undefined && body !== null) {
      if (typeof body !== "object" || isArray(body)) {
        return rejected(new NativeTypeError(fnName + ": the request body must be an object such as {fields: {...}}"));
      }
      try {
        bodyText = stringify(body);
      } catch (e) {
        return rejected(new NativeTypeError(fnName + ": the request body must be plain JSON data (" + describe(e) + ")"));
      }
      if (typeof bodyText !== "string" || bodyText[0] !== "{") {
        return rejected(new NativeTypeError(fnName + ": the request body must be an object such as {fields: {...}}"));
      }
      if (bodyText.length > LIMITS.body_chars) {
        return rejected(new NativeTypeError(fnName + ": the request body is larger than " + LIMITS.body_chars + " characters"));
      }
    }
    if (callsMade >= LIMITS.calls) {
      return rejected(new NativeError(fnName + ": this run already made " + LIMITS.calls + " Connect API calls, the most one run may make"));
    }
    callsMade += 1;
    const seq = callsMade;
    return new NativePromise(function (resolve, reject) {
      waiting[seq] = { __proto__: null, resolve: resolve, reject: reject };
      waitingCount += 1;
      callsText += (callsText === "" ? "" : ",") +
        '{"seq":' + seq + ',"kind":"' + kind + '","id":' + stringify(id) + ',"body":' + bodyText + "}";
    });
  }

  function runAction(actionId, requestBody) {
    return hostCall("action", "runAction", actionId, requestBody);
  }

  function performQuery(queryId, requestBody) {
    return hostCall("query", "performQuery", queryId, requestBody);
  }

  function addTimer(callback, delay, args, repeat) {
    if (typeof callback !== "function") throw new NativeTypeError("The \"callback\" argument must be of type function");
    const id = nextTimer++;
    let wait = +delay;
    // Node's rule: anything that is not a number from 1 to 2^31-1 means 1 ms.
    if (!(wait >= 1 && wait <= 2147483647)) wait = 1;
    timers[id] = { __proto__: null, due: dateNow() + wait, every: repeat ? wait : 0, callback: callback, args: args };
    return id;
  }

  function restArgs(args, from) {
    const out = [];
    for (let i = from; i < args.length; i++) defineProperty(out, i - from, { value: args[i], writable: true, enumerable: true, configurable: true });
    return out;
  }

  function setTimeout(callback, delay) { return addTimer(callback, delay, restArgs(arguments, 2), false); }
  function setInterval(callback, delay) { return addTimer(callback, delay, restArgs(arguments, 2), true); }
  function setImmediate(callback) { return addTimer(callback, 0, restArgs(arguments, 1), false); }
  function clearTimer(id) {
    if (typeof id === "number") delete timers[id];
  }

  function deepFreeze(value) {
    if (value && typeof value === "object") {
      freeze(value);
      const names = objectKeys(value);
      for (let i = 0; i < names.length; i++) deepFreeze(value[names[i]]);
    }
    return value;
  }

  function define(name, value) {
    defineProperty(global, name, { value: value, writable: false, enumerable: false, configurable: false });
  }

  // The host's handle on this context. Scripts can see it but gain nothing: it only settles their
  // own Promises and reports their own state, and the host checks and caps all it reports.
  const driver = {
    start: function (setupJson) {
      const setup = parseJSON(setupJson);
      // Made on first use: most scripts never look at the time, and a zone costs a few ms to unpack.
      let now = null;
      define("Meta", freeze({
        get currentUserTime() {
          if (now === null) now = momentTz(setup.now_ms, setup.zone);
          return now;
        },
      }));
      define("Trigger", deepFreeze({ id: setup.trigger.id, ingredients: setup.trigger.ingredients }));
      define("Connection", deepFreeze({
        serviceUserId: setup.connection.serviceUserId,
        currentFeatureName: setup.connection.currentFeatureName,
        userFeatureId: setup.connection.userFeatureId,
        configuration: setup.connection.configuration,
      }));
      let main;
      try {
        main = nativeEval(SCRIPT_PREFIX + setup.script + SCRIPT_SUFFIX);
      } catch (e) {
        reportError(describe(e));
        return;
      }
      try {
        main();
      } catch (e) {
        reportError(describe(e));
      }
    },
    state: function () {
      const calls = callsText;
      callsText = "";
      const logs = logsText;
      logsText = "";
      let due = -1;
      for (const id in timers) {
        const at = timers[id].due;
        if (due < 0 || at < due) due = at;
      }
      const wait = due < 0 ? "null" : "" + mathMax(0, due - dateNow());
      return '{"calls":[' + calls + '],"logs":[' + logs + '],"wait_ms":' + wait + "}";
    },
    settle: function (resultsJson) {
      const results = parseJSON(resultsJson);
      for (let i = 0; i < results.length; i++) {
        const result = results[i];
        const entry = waiting[result.seq];
        if (entry === undefined) continue;
        delete waiting[result.seq];
        waitingCount -= 1;
        if (typeof result.error === "string") {
          entry.reject(new NativeError(result.error));
        } else {
          entry.resolve({ statusCode: result.statusCode, responseBody: result.responseBody });
        }
      }
    },
    fireTimers: function () {
      const now = dateNow();
      let fired = true;
      // Due timers run in due order (then creation order), each at most once per turn.
      const ran = Object.create(null);
      while (fired) {
        fired = false;
        let next = -1;
        for (const id in timers) {
          const timer = timers[id];
          if (timer.due <= now && ran[id] === undefined && (next < 0 || timer.due < timers[next].due)) next = +id;
        }
        if (next < 0) break;
        const timer = timers[next];
        ran[next] = true;
        fired = true;
        if (timer.every > 0) timer.due = now + timer.every;
        else delete timers[next];
        try {
          apply(timer.callback, undefined, timer.args);
        } catch (e) {
          reportError(describe(e));
        }
      }
    },
    // Run moment-timezone's code once while the context waits for its run, so the run does not pay for it.
    warm: function () {
      momentTz(0, "Etc/UTC").format();
    },
    report: function () {
      for (let i = 0; i < thrownCount; i++) {
        const holder = thrown[i];
        if (holder.threw && !apply(weakSetHas, handled, [holder.promise])) {
          reportError("Uncaught error in a Promise callback: " + describe(holder.error));
        }
      }
      return '{"logs":[' + logsText + '],"logs_dropped":' + logsDropped + ',"errors":[' + errorsText +
        '],"unsettled":' + waitingCount + "}";
    },
  };

  define("console", console);
  define("runAction", runAction);
  define("performQuery", performQuery);
  // mini-racer declared these two with `var`: they can be replaced, not redefined.
  global.setTimeout = setTimeout;
  global.clearTimeout = clearTimer;
  define("setInterval", setInterval);
  define("setImmediate", setImmediate);
  define("clearInterval", clearTimer);
  define("clearImmediate", clearTimer);
  define("__connectionsRuntime", freeze(driver));
})(globalThis, __LIMITS__);
//# sourceURL=runtime.js

// A small client of Convex's sync protocol (the one the official clients speak), signed in
// with the admin key: query subscriptions that stay live, and mutations that resolve once
// their effect is visible to the subscriptions (read-your-writes). It reconnects by itself.
//
//   const client = new SyncClient(location.origin, adminKey, (status) => ...);
//   const stop = client.subscribe("_system/dashboard:tables", {}, ({value, error}) => ...);
//   await client.mutation("_system/dashboard:delete", {ids: [id]});
//
// Arguments and results are Convex wire JSON (values.js).

const ZERO_TS = "AAAAAAAAAAA=";

function tsValue(b64) {
  if (!b64) return 0n;
  const s = atob(b64);
  let n = 0n;
  for (let i = s.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(s.charCodeAt(i));
  return n;
}

function uuid() {
  return crypto.randomUUID ? crypto.randomUUID()
    : "10000000-1000-4000-8000-100000000000".replace(/[018]/g, (c) =>
      (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16));
}

export class FunctionError extends Error {
  constructor(message, data, logLines) {
    super(message);
    this.data = data;
    this.logLines = logLines || [];
  }
}

export class SyncClient {
  constructor(origin, adminKey, onStatus) {
    this.url = origin.replace(/^http/, "ws") + "/api/sync";
    this.adminKey = adminKey;
    this.onStatus = onStatus || (() => {});
    this.sessionId = uuid();
    this.nextQueryId = 1;
    this.nextRequestId = 1;
    this.queries = new Map(); // queryId -> {udfPath, args, listener, last}
    this.pendingMods = [];
    this.requests = new Map(); // requestId -> {resolve, reject, ts}
    this.connections = 0;
    this.closed = false;
    this.delay = 250;
    this.maxTs = 0n;
    this.connect();
  }

  // -- public ----------------------------------------------------------------------------

  subscribe(udfPath, args, listener) {
    const queryId = this.nextQueryId++;
    this.queries.set(queryId, { udfPath, args, listener, last: null });
    this.modify({ type: "Add", queryId, udfPath, args: [args] });
    return () => {
      if (this.queries.delete(queryId)) this.modify({ type: "Remove", queryId });
    };
  }

  mutation(udfPath, args) {
    return this.request("Mutation", udfPath, args);
  }

  action(udfPath, args) {
    return this.request("Action", udfPath, args);
  }

  close() {
    this.closed = true;
    clearTimeout(this.retry);
    clearTimeout(this.watchdog);
    if (this.ws) this.ws.close(1000, "closed by the dashboard");
  }

  // -- connection ------------------------------------------------------------------------

  connect() {
    if (this.closed) return;
    this.onStatus(this.connections ? "reconnecting" : "connecting");
    const ws = (this.ws = new WebSocket(this.url));
    this.open = false;
    ws.onopen = () => {
      this.open = true;
      this.version = { querySet: 0, identity: 0, ts: ZERO_TS };
      this.querySet = 0;
      const connect = {
        type: "Connect",
        sessionId: this.sessionId,
        connectionCount: this.connections++,
        lastCloseReason: this.lastCloseReason || "InitialConnect",
        clientTs: Date.now(),
      };
      if (this.maxTsText) connect.maxObservedTimestamp = this.maxTsText;
      this.send(connect);
      this.send({ type: "Authenticate", baseVersion: 0, tokenType: "Admin", value: this.adminKey });
      const adds = [...this.queries].map(([queryId, q]) =>
        ({ type: "Add", queryId, udfPath: q.udfPath, args: [q.args] }));
      this.pendingMods = [];
      this.sendModifications(adds);
      this.kick();
    };
    ws.onmessage = (event) => {
      this.kick();
      this.receive(JSON.parse(event.data));
    };
    ws.onclose = (event) => {
      this.open = false;
      clearTimeout(this.watchdog);
      this.lastCloseReason = event.reason || `closed (${event.code})`;
      for (const [id, req] of this.requests) {
        req.reject(new Error("The connection to the deployment was lost before it answered."));
        this.requests.delete(id);
      }
      if (this.closed) return;
      if (this.refused) return;
      this.onStatus("reconnecting");
      this.retry = setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 8000);
    };
  }

  // The server sends a Ping at least every 15 s: silence for 45 s means a dead socket.
  kick() {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.ws && this.ws.close(4000, "InactiveServer"), 45000);
  }

  send(message) {
    this.ws.send(JSON.stringify(message));
  }

  modify(mod) {
    this.pendingMods.push(mod);
    if (this.pendingMods.length === 1) queueMicrotask(() => this.flush());
  }

  flush() {
    if (!this.open || this.pendingMods.length === 0) return;
    const mods = this.pendingMods;
    this.pendingMods = [];
    this.sendModifications(mods);
  }

  sendModifications(modifications) {
    this.send({ type: "ModifyQuerySet", baseVersion: this.querySet, newVersion: this.querySet + 1, modifications });
    this.querySet += 1;
  }

  request(type, udfPath, args) {
    return new Promise((resolve, reject) => {
      if (!this.open) {
        reject(new Error("Not connected to the deployment (reconnecting): try again in a moment."));
        return;
      }
      const requestId = this.nextRequestId++;
      this.requests.set(requestId, { resolve, reject, ts: null });
      this.send({ type, requestId, udfPath, args: [args] });
    });
  }

  // -- server messages -------------------------------------------------------------------

  receive(message) {
    switch (message.type) {
      case "Transition":
        return this.transition(message);
      case "MutationResponse":
      case "ActionResponse":
        return this.response(message);
      case "AuthError":
        this.refused = true;
        this.onStatus("refused", message.error);
        return;
      case "FatalError":
        this.onStatus("error", message.error);
        return;
      default:
        return; // Ping
    }
  }

  transition(message) {
    const start = message.startVersion;
    const v = this.version;
    if (start.querySet !== v.querySet || start.identity !== v.identity || start.ts !== v.ts) {
      this.ws.close(4001, "InvalidStartVersion");
      return;
    }
    this.version = message.endVersion;
    const ts = tsValue(message.endVersion.ts);
    if (ts > this.maxTs) {
      this.maxTs = ts;
      this.maxTsText = message.endVersion.ts;
    }
    this.delay = 250;
    this.onStatus("connected");
    for (const mod of message.modifications) {
      const q = this.queries.get(mod.queryId);
      if (!q) continue;
      if (mod.type === "QueryUpdated") q.last = { value: mod.value, logLines: mod.logLines };
      else if (mod.type === "QueryFailed") {
        q.last = { error: mod.errorMessage, errorData: mod.errorData, logLines: mod.logLines };
      } else continue;
      q.listener(q.last);
    }
    for (const [id, req] of this.requests) {
      if (req.ts !== null && req.ts <= ts) {
        this.requests.delete(id);
        req.resolve(req.value);
      }
    }
  }

  response(message) {
    const req = this.requests.get(message.requestId);
    if (!req) return;
    if (!message.success) {
      this.requests.delete(message.requestId);
      req.reject(new FunctionError(message.result, message.errorData, message.logLines));
      return;
    }
    if (message.type === "ActionResponse" || !message.ts || tsValue(message.ts) <= tsValue(this.version.ts)) {
      this.requests.delete(message.requestId);
      req.resolve(message.result);
      return;
    }
    req.ts = tsValue(message.ts); // resolved by the Transition that shows it
    req.value = message.result;
  }
}

// The trading page: market data from the stream (WebSocket), the account through the REST API.
// Amounts stay decimal strings from end to end: they are compared as decimals, never parsed as floats.
const config = JSON.parse(document.getElementById("page-config").textContent);
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const streamUrl = params.get("stream") || `ws://${location.hostname}:${config.streamPort}/ws`;
const BOOK_ROWS = 15, TRADE_ROWS = 30;

const state = { market: null, seq: null, bids: new Map(), asks: new Map(), trades: [], apiKey: null, userId: null };
let socket = null;
let refreshTimer = null;
let refreshGeneration = 0;  // a refresh that finishes after a newer one started draws nothing

// -- decimals as strings ----------------------------------------------------------------------
function compareDecimal(a, b) {  // non-negative plain decimals
  const [ai, af = ""] = a.split("."), [bi, bf = ""] = b.split(".");
  if (ai.length !== bi.length) return ai.length - bi.length;
  if (ai !== bi) return ai < bi ? -1 : 1;
  const width = Math.max(af.length, bf.length);
  const x = af.padEnd(width, "0"), y = bf.padEnd(width, "0");
  return x === y ? 0 : (x < y ? -1 : 1);
}
const base = (market) => market.split("-")[0];

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "–";
  if (className) td.className = className;
  return td;
}
function row(...cells) {
  const tr = document.createElement("tr");
  tr.append(...cells);
  return tr;
}

// -- the stream -------------------------------------------------------------------------------
function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}
const marketChannels = (market) => [`book:${market}`, `trades:${market}`, `ticker:${market}`];

function connectStream() {
  socket = new WebSocket(streamUrl);
  socket.onopen = () => {
    $("stream-status").textContent = "live";
    $("stream-status").className = "status live";
    send({ op: "subscribe", channels: marketChannels(state.market) });
    if (state.apiKey) send({ op: "auth", api_key: state.apiKey });
  };
  socket.onclose = (event) => {
    $("stream-status").textContent = `stream closed (${event.code}${event.reason ? ": " + event.reason : ""}), reconnecting…`;
    $("stream-status").className = "status";
    setTimeout(connectStream, 1000);
  };
  socket.onmessage = (event) => onMessage(JSON.parse(event.data));
}

function onMessage(message) {
  if (message.op === "authenticated") {
    state.userId = message.user_id;
    $("account-status").textContent = `Signed in as user ${message.user_id}.`;
    send({ op: "subscribe", channels: ["orders"] });
    refreshAccount();
  } else if (message.op === "error") {
    const target = message.error.code === "UNAUTHORIZED" ? "account-status" : "stream-status";
    $(target).textContent = `${message.error.code}: ${message.error.message}`;
  } else if (message.channel === `book:${state.market}`) {
    onBook(message);
  } else if (message.channel === `trades:${state.market}`) {
    state.trades = [...message.data.slice().reverse(), ...state.trades].slice(0, TRADE_ROWS);
    renderTrades();
  } else if (message.channel === `ticker:${state.market}`) {
    renderTicker(message.data);
  } else if (message.channel === "orders") {
    scheduleRefresh();
  }
}

function onBook(message) {
  if (message.type === "snapshot") {
    state.bids = new Map(message.bids);
    state.asks = new Map(message.asks);
  } else if (message.prev_seq !== state.seq) {  // a gap: ask for a fresh snapshot
    send({ op: "subscribe", channels: [`book:${state.market}`] });
    return;
  } else {
    for (const [side, levels] of [[state.bids, message.bids], [state.asks, message.asks]]) {
      for (const [price, quantity] of levels) {
        if (compareDecimal(quantity, "0") === 0) side.delete(price); else side.set(price, quantity);
      }
    }
  }
  state.seq = message.seq;
  renderBook();
}

// -- rendering --------------------------------------------------------------------------------
function renderBook() {
  const asks = [...state.asks].sort((a, b) => compareDecimal(a[0], b[0])).slice(0, BOOK_ROWS).reverse();
  const bids = [...state.bids].sort((a, b) => compareDecimal(b[0], a[0])).slice(0, BOOK_ROWS);
  $("book-asks").replaceChildren(...asks.map(([p, q]) => row(cell(p), cell(q))));
  $("book-bids").replaceChildren(...bids.map(([p, q]) => row(cell(p), cell(q))));
  $("book-seq").textContent = state.seq;
}

function renderTrades() {
  $("trades").replaceChildren(...state.trades.map((t) =>
    row(cell(t.timestamp.slice(11, 19)), cell(t.price, t.taker_side), cell(t.quantity), cell(t.taker_side))));
}

function renderTicker(t) {
  $("ticker").textContent = `last ${t.last_price ?? "–"} · bid ${t.best_bid ?? "–"} · ask ${t.best_ask ?? "–"}`
    + ` · 24h high ${t.high_24h ?? "–"} low ${t.low_24h ?? "–"} volume ${t.volume_24h} (${t.trade_count_24h} trades)`;
}

// -- the account, through the REST API --------------------------------------------------------
async function api(method, path, body) {
  const response = await fetch(path, {
    method, headers: { "Authorization": `Bearer ${state.apiKey}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error ? `${data.error.code}: ${data.error.message}` : `HTTP ${response.status}`);
  return data;
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refreshAccount, 150);
}

async function refreshAccount() {
  if (!state.userId) return;
  const generation = ++refreshGeneration;
  const query = `userId=${state.userId}&currency_symbol=${encodeURIComponent(base(state.market))}&limit=100`;
  const [{ orders }, { balances }] = await Promise.all([
    api("GET", `/api/orders?${query}`), api("GET", `/api/balances/${state.userId}`)]);
  if (generation !== refreshGeneration) return;
  const open = orders.filter((o) => o.status === "pending" || o.status === "partially_filled");
  $("my-orders").replaceChildren(...open.map((o) => {
    const cancel = document.createElement("button");
    cancel.textContent = o.cancel_requested ? "cancelling" : "Cancel";
    cancel.disabled = o.cancel_requested;
    cancel.dataset.orderId = o.id;
    cancel.onclick = () => cancelOrder(o.id);
    const actions = cell("");
    actions.replaceChildren(cancel);
    return row(cell(String(o.id)), cell(o.order_type, o.order_type), cell(o.price), cell(o.quantity),
               cell(o.filled_quantity), cell(o.status), actions);
  }));
  $("balances").replaceChildren(...balances.map((b) => row(cell(b.currency_symbol), cell(b.available), cell(b.locked))));
  await renderFills(orders, generation);
}

async function renderFills(orders, generation) {
  try {
    const { fills } = await api("GET", `/api/fills?currency_symbol=${encodeURIComponent(base(state.market))}&limit=50`);
    if (generation !== refreshGeneration) return;
    $("fills-note").textContent = "";
    $("fills").replaceChildren(...fills.map((f) =>
      row(cell(String(f.order_id)), cell(f.side, f.side), cell(f.price), cell(f.quantity), cell(f.liquidity))));
  } catch {
    if (generation !== refreshGeneration) return;
    // No fills endpoint on this server: the orders that traded stand in for their fills.
    $("fills-note").textContent = "Orders of yours that traded (per-trade fills need GET /api/fills).";
    const traded = orders.filter((o) => compareDecimal(o.filled_quantity, "0") > 0);
    $("fills").replaceChildren(...traded.map((o) =>
      row(cell(String(o.id)), cell(o.order_type, o.order_type), cell(o.price ?? "market"), cell(o.filled_quantity),
          cell(o.status))));
  }
}

async function placeOrder(event) {
  event.preventDefault();
  if (!state.apiKey) { $("order-message").textContent = "Paste an API key first."; return; }
  try {
    const { order } = await api("POST", "/api/orders", {
      currency_symbol: base(state.market), order_type: $("side").value, price: $("price").value.trim(),
      quantity: $("quantity").value.trim() });
    $("order-message").textContent = `Order ${order.id} accepted (${order.status}).`;
    $("order-message").className = "hint";
    scheduleRefresh();
  } catch (error) {
    $("order-message").textContent = error.message;
    $("order-message").className = "hint error";
  }
}

async function cancelOrder(orderId) {
  try {
    await api("DELETE", `/api/orders/${orderId}`);
    $("order-message").textContent = `Cancel of order ${orderId} requested.`;
  } catch (error) {
    $("order-message").textContent = error.message;
  }
  scheduleRefresh();
}

function useKey(event) {
  event.preventDefault();
  state.apiKey = $("api-key").value.trim() || null;
  if (state.apiKey) send({ op: "auth", api_key: state.apiKey });
}

function selectMarket(market) {
  if (state.market) send({ op: "unsubscribe", channels: marketChannels(state.market) });
  Object.assign(state, { market, seq: null, bids: new Map(), asks: new Map(), trades: [] });
  renderBook();
  renderTrades();
  $("ticker").textContent = "–";
  send({ op: "subscribe", channels: marketChannels(market) });
  scheduleRefresh();
}

const markets = config.markets;
const wanted = params.get("market");
if (wanted && !markets.includes(wanted)) markets.push(wanted);
$("market").replaceChildren(...markets.map((m) => Object.assign(document.createElement("option"), { value: m, textContent: m })));
$("market").value = wanted || markets[0];
state.market = $("market").value;
$("market").onchange = () => selectMarket($("market").value);
$("key-form").onsubmit = useKey;
$("order-form").onsubmit = placeOrder;
connectStream();

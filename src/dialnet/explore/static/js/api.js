// Talking to the dialnet explore server: every /api/ call carries the token from the page's own URL.

export const token = new URLSearchParams(location.search).get("token") || "";

function withToken(path) {
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
}

async function check(response) {
  if (response.ok) return response;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body.error) message = body.error + (body.fix ? ` (${body.fix})` : "");
  } catch (_) { /* not JSON: keep the status line */ }
  throw new Error(message);
}

export async function getJSON(path) {
  const response = await fetch(path, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
  return (await check(response)).json();
}

export async function postJSON(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  return (await check(response)).json();
}

// Raw little-endian float32 (the snapshot, the sample grid): a Float32Array and the response headers.
export async function getFloats(path) {
  const response = await check(await fetch(path, { headers: { Authorization: "Bearer " + token }, cache: "no-store" }));
  const buffer = await response.arrayBuffer();
  return { values: new Float32Array(buffer), headers: response.headers };
}

// Server-Sent Events: onTick({state, curves}) for every tick; EventSource cannot send headers, so ?token=.
export function openEvents(onTick, onTrouble) {
  const source = new EventSource(withToken("/api/events"));
  source.onmessage = (event) => {
    try { onTick(JSON.parse(event.data)); } catch (err) { onTrouble(err); }
  };
  source.onerror = () => onTrouble(new Error("lost the connection to dialnet explore (is it still running?)"));
  return source;
}

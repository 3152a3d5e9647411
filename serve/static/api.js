// The page's side of the API: the token, requests, COCO RLE masks, and the propagation WebSocket.
"use strict";

const api = (() => {
  // The token comes in the page's fragment (#token=...), which never reaches the server's logs, or from the
  // dialog; it lives in this tab's sessionStorage and goes out as a header (a WebSocket: as a subprotocol).
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    sessionStorage.setItem("sam2-trt-token", fromHash);
    history.replaceState(null, "", location.pathname);
  }
  let token = sessionStorage.getItem("sam2-trt-token");

  function askToken() {
    return new Promise((resolve) => {
      const dialog = document.getElementById("token-dialog");
      dialog.addEventListener("close", () => {
        token = document.getElementById("token-input").value.trim();
        sessionStorage.setItem("sam2-trt-token", token);
        resolve();
      }, { once: true });
      dialog.showModal();
    });
  }

  async function request(method, path, body, raw) {
    for (;;) {
      const headers = {};
      if (token) headers.Authorization = `Bearer ${token}`;
      let payload = body;
      if (body !== undefined && !raw) {
        headers["Content-Type"] = "application/json";
        payload = JSON.stringify(body);
      }
      const response = await fetch(path, { method, headers, body: payload });
      if (response.status === 401) { await askToken(); continue; }
      if (!response.ok) {
        let detail = `${response.status} ${response.statusText}`;
        try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
        throw new Error(detail);
      }
      return response;
    }
  }

  const json = async (method, path, body) => (await request(method, path, body)).json();

  // COCO compressed RLE (pycocotools' rleFrString) -> Uint8Array of H*W in row-major order.
  function decodeRle(rle) {
    const [h, w] = rle.size, s = rle.counts, counts = [];
    let p = 0;
    while (p < s.length) {
      let x = 0, k = 0, more = 1;
      while (more) {
        const c = s.charCodeAt(p) - 48;
        x |= (c & 0x1f) << (5 * k);
        more = c & 0x20; p++; k++;
        if (!more && (c & 0x10)) x |= -1 << (5 * k);
      }
      if (counts.length > 2) x += counts[counts.length - 2];
      counts.push(x);
    }
    const mask = new Uint8Array(h * w);
    let i = 0, value = 0;
    for (const n of counts) {  // runs over the column-major pixels, starting with background
      if (value) for (let j = i; j < i + n; j++) mask[(j % h) * w + Math.floor(j / h)] = 1;
      i += n; value ^= 1;
    }
    return mask;
  }

  function propagate(sessionId, options, onEvent) {
    const protocols = ["sam2-trt"].concat(token ? [`bearer.${token}`] : []);
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/api/videos/${sessionId}/propagate`, protocols);
    ws.onopen = () => ws.send(JSON.stringify(options));
    ws.onmessage = (m) => onEvent(JSON.parse(m.data));
    ws.onclose = (e) => onEvent({ type: "closed", code: e.code });
    return { cancel: () => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: "cancel" })) };
  }

  async function download(path, filename) {
    const blob = await (await request("GET", path)).blob();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  }

  async function bitmap(path) {
    return createImageBitmap(await (await request("GET", path)).blob());
  }

  return { request, json, decodeRle, propagate, download, bitmap };
})();

// The live timeline: caller (top) and assistant (bottom) waveform envelopes, server VAD turns, responses,
// tool spans and marks on the session clock. The kernel sends only what is new, a few times a second.

const BIN_MS = 25;
const COLORS = { input: "#1f77b4", output: "#ff7f0e", turn: "rgba(31,119,180,0.18)", response: "rgba(255,127,14,0.18)", tool: "#2ca02c", mark: "#d62728" };

function render({ model, el: root }) {
  root.classList.add("voicelab-timeline");
  const canvas = document.createElement("canvas");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "Session timeline: caller and assistant audio, turns, responses and tools");
  canvas.style.width = "100%";
  canvas.style.height = `${model.get("height")}px`;
  const controls = document.createElement("label");
  const fit = document.createElement("input");
  fit.type = "checkbox";
  controls.append(fit, document.createTextNode(" whole call"));
  controls.style.fontSize = "12px";
  root.append(canvas, controls);

  const tracks = { input: { mins: new Int8Array(0), maxs: new Int8Array(0), n: 0 }, output: { mins: new Int8Array(0), maxs: new Int8Array(0), n: 0 } };
  const spans = new Map();
  const marks = [];
  let frame = 0;

  function ensure(track, size) {
    const t = tracks[track];
    if (t.mins.length < size) {
      const cap = Math.max(size, t.mins.length * 2, 1024);
      const mins = new Int8Array(cap); mins.set(t.mins);
      const maxs = new Int8Array(cap); maxs.set(t.maxs);
      t.mins = mins; t.maxs = maxs;
    }
  }

  function schedule() { if (!frame) frame = requestAnimationFrame(draw); }

  function draw() {
    frame = 0;
    const dpr = globalThis.devicePixelRatio || 1;
    const w = Math.max(100, canvas.clientWidth || 800);
    const h = model.get("height");
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const endMs = Math.max(tracks.input.n, tracks.output.n) * BIN_MS;
    let lastEnd = endMs;
    for (const s of spans.values()) lastEnd = Math.max(lastEnd, s.end_ms ?? s.start_ms);
    const windowMs = fit.checked ? Math.max(lastEnd, 1000) : model.get("window_s") * 1000;
    const t0 = fit.checked ? 0 : Math.max(0, lastEnd - windowMs);
    const x = (ms) => ((ms - t0) / windowMs) * w;
    const lane = { input: [14, (h - 40) / 2 + 14], output: [(h - 40) / 2 + 26, h - 14] };
    // spans
    for (const s of spans.values()) {
      const end = s.end_ms ?? lastEnd;
      if (end < t0) continue;
      if (s.kind === "tool") {
        g.fillStyle = COLORS.tool;
        const y = (h - 40) / 2 + 16;
        g.fillRect(x(s.start_ms), y, Math.max(2, x(end) - x(s.start_ms)), 8);
        g.fillText(s.label, x(s.start_ms) + 2, y + 18);
        continue;
      }
      const [y0, y1] = s.kind === "turn" ? lane.input : lane.output;
      g.fillStyle = COLORS[s.kind] || "rgba(0,0,0,0.1)";
      g.fillRect(x(s.start_ms), y0, Math.max(1, x(end) - x(s.start_ms)), y1 - y0);
    }
    // waveforms
    for (const name of ["input", "output"]) {
      const t = tracks[name];
      const [y0, y1] = lane[name];
      const mid = (y0 + y1) / 2, half = (y1 - y0) / 2;
      g.strokeStyle = COLORS[name];
      g.beginPath();
      const first = Math.max(0, Math.floor(t0 / BIN_MS));
      const last = Math.min(t.n, Math.ceil((t0 + windowMs) / BIN_MS));
      const perPx = Math.max(1, Math.floor((last - first) / w));
      for (let b = first; b < last; b += perPx) {
        let lo = 127, hi = -128;
        for (let k = b; k < Math.min(last, b + perPx); k++) { lo = Math.min(lo, t.mins[k]); hi = Math.max(hi, t.maxs[k]); }
        const px = x(b * BIN_MS);
        g.moveTo(px, mid - (hi / 127) * half);
        g.lineTo(px, mid - (lo / 127) * half + 0.5);
      }
      g.stroke();
      g.fillStyle = "#555";
      g.fillText(name === "input" ? "caller" : "assistant", 4, y0 + 10);
    }
    // marks
    g.strokeStyle = COLORS.mark; g.fillStyle = COLORS.mark;
    for (const m of marks) {
      if (m.t_ms < t0) continue;
      g.beginPath(); g.moveTo(x(m.t_ms), 0); g.lineTo(x(m.t_ms), h - 14); g.stroke();
      g.fillText(m.label, x(m.t_ms) + 2, h - 16);
    }
    // axis
    g.fillStyle = "#777";
    const stepMs = windowMs > 120000 ? 30000 : windowMs > 40000 ? 10000 : windowMs > 10000 ? 5000 : 1000;
    for (let ms = Math.ceil(t0 / stepMs) * stepMs; ms <= t0 + windowMs; ms += stepMs) g.fillText(`${Math.round(ms / 1000)} s`, x(ms), h - 2);
  }

  model.on("msg:custom", (msg, buffers) => {
    if (!msg) return;
    if (msg.type === "reset") {
      for (const t of Object.values(tracks)) t.n = 0;
      spans.clear(); marks.length = 0;
    } else if (msg.type === "update") {
      (msg.envelopes || []).forEach((env, i) => {
        const toInt8 = (v) => (v instanceof DataView ? new Int8Array(v.buffer, v.byteOffset, v.byteLength) : new Int8Array(v.buffer || v));
        const mins = toInt8(buffers[2 * i]);
        const maxs = toInt8(buffers[2 * i + 1]);
        ensure(env.track, env.start + mins.length);
        const t = tracks[env.track];
        t.mins.set(mins, env.start); t.maxs.set(maxs, env.start);
        t.n = env.start + mins.length; // a cut track shrinks here
      });
      for (const s of msg.spans || []) spans.set(s.kind + s.key, s);
      for (const m of msg.marks || []) marks.push(m);
    }
    schedule();
  });
  fit.addEventListener("change", schedule);
  const ro = new ResizeObserver(schedule);
  ro.observe(canvas);
  schedule();
  return () => ro.disconnect();
}

export default { render };

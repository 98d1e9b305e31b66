// Streaming player of the assistant's 24 kHz PCM16: resampled to the context's rate here, queued in an
// AudioWorklet with a small jitter buffer, played; reports {item_id, played_ms} about every 100 ms and on
// every stop; flushes at once on interrupt; counts underruns. (audio_context.js is prepended.)

const PLAYER_WORKLET = `
class VoicelabPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.q = []; this.head = 0; this.buffered = 0;
    this.item = null; this.played = new Map(); this.ended = new Set();
    this.waiting = true; this.underruns = 0; this.sinceReport = 0;
    this.prebuffer = Math.round(sampleRate * (o.jitterMs || 80) / 1000);
    this.reportEvery = Math.round(sampleRate * (o.reportMs || 100) / 1000);
    this.port.onmessage = (e) => {
      const m = e.data;
      if (m.type === "chunk") { this.q.push({ item: m.item, data: m.data }); this.buffered += m.data.length; }
      else if (m.type === "end") { this.ended.add(m.item); }
      else if (m.type === "flush") {
        this.report(true, "flush");
        this.q = []; this.head = 0; this.buffered = 0; this.item = null; this.waiting = true; this.ended.clear();
      }
    };
  }
  report(final, why) {
    if (this.item === null) return;
    this.port.postMessage({ type: "played", item: this.item, played: this.played.get(this.item) || 0,
      rate: sampleRate, underruns: this.underruns, buffered: this.buffered, final, why, at: currentTime });
    this.sinceReport = 0;
  }
  process(inputs, outputs) {
    const out = outputs[0];
    const ch = out[0];
    const n = ch.length;
    let i = 0;
    if (this.waiting && this.q.length) {
      const last = this.q[this.q.length - 1].item;
      if (this.buffered >= this.prebuffer || this.ended.has(last) || this.q[0].item !== this.item) this.waiting = false;
    }
    if (!this.waiting) {
      while (i < n && this.q.length) {
        const c = this.q[0];
        if (c.item !== this.item) { if (this.item !== null) this.report(true, "next"); this.item = c.item; }
        const take = Math.min(n - i, c.data.length - this.head);
        ch.set(c.data.subarray(this.head, this.head + take), i);
        i += take; this.head += take; this.buffered -= take;
        this.played.set(c.item, (this.played.get(c.item) || 0) + take);
        if (this.head >= c.data.length) { this.q.shift(); this.head = 0; }
      }
      if (i < n && this.item !== null) {
        if (this.ended.has(this.item)) { this.report(true, "end"); this.item = null; }
        else { this.underruns += 1; this.report(true, "underrun"); }
        this.waiting = true;
      }
    }
    for (let c = 1; c < out.length; c++) out[c].set(ch);
    this.sinceReport += n;
    // while playing only: during a rebuffer nothing is heard, and the stop was reported as it began
    if (this.item !== null && !this.waiting && this.sinceReport >= this.reportEvery) this.report(false, "tick");
    return true;
  }
}
registerProcessor("voicelab-player", VoicelabPlayer);
`;

function render({ model, el: root }) {
  root.classList.add("voicelab-player");
  const line = document.createElement("div");
  line.className = "vl-player";
  line.setAttribute("role", "status");
  const enable = document.createElement("button");
  enable.type = "button";
  enable.textContent = "Enable sound";
  enable.style.display = "none";
  const text = document.createElement("span");
  line.append(enable, text);
  root.append(line);

  let node = null, starting = null;
  const resamplers = new Map(); // item -> {prev, t} continuous linear interpolation 24 kHz -> ctx rate
  const received = new Map();   // item -> ms received (24 kHz)
  let underruns = 0, lastItem = "", lastPlayed = 0;

  function show() {
    const ctx = voicelabAudio().ctx;
    enable.style.display = ctx && ctx.state === "suspended" ? "" : "none";
    text.textContent = `assistant audio: ${lastItem ? `${Math.round(lastPlayed)} ms played of ${lastItem}` : "idle"}` +
      (underruns ? `, ${underruns} underrun${underruns === 1 ? "" : "s"}` : "");
  }

  async function ensureNode() {
    if (node) return node;
    if (!starting) {
      starting = (async () => {
        const ctx = audioContext();
        await loadWorklet(ctx, "voicelab-player", PLAYER_WORKLET);
        const n = new AudioWorkletNode(ctx, "voicelab-player", {
          numberOfInputs: 0, outputChannelCount: [Math.min(2, ctx.destination.channelCount || 2)],
          processorOptions: { jitterMs: model.get("jitter_ms"), reportMs: model.get("report_ms") },
        });
        n.connect(ctx.destination);
        n.port.onmessage = (e) => {
          const m = e.data;
          if (m.type !== "played") return;
          const playedMs = Math.min((m.played / m.rate) * 1000, received.get(m.item) || 0);
          underruns = m.underruns; lastItem = m.item; lastPlayed = playedMs;
          model.send({ type: "played", item_id: m.item, played_ms: playedMs, underruns: m.underruns,
            buffered_ms: (m.buffered / m.rate) * 1000, final: m.final, why: m.why, audio_time: m.at });
          show();
        };
        node = n;
        return n;
      })();
    }
    return starting;
  }

  function toFloat(int16, item, rate) {
    let st = resamplers.get(item);
    if (!st) { st = { prev: 0, t: 0, first: true }; resamplers.set(item, st); }
    const step = 24000 / rate; // input samples per output sample
    const out = new Float32Array(Math.ceil(int16.length / step) + 2);
    let k = 0;
    for (let i = 0; i < int16.length; i++) {
      const v = int16[i] / 32768;
      if (st.first) { st.prev = v; st.first = false; }
      while (st.t <= 1) { out[k++] = st.prev + (v - st.prev) * st.t; st.t += step; }
      st.t -= 1; st.prev = v;
    }
    return out.subarray(0, k);
  }

  model.on("msg:custom", async (msg, buffers) => {
    if (!msg) return;
    if (msg.type === "audio") {
      const n = await ensureNode();
      const ctx = audioContext();
      const view = buffers && buffers[0];
      if (!view) return;
      const bytes = view instanceof DataView ? view : new DataView(view.buffer || view);
      const int16 = new Int16Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / 2));
      received.set(msg.item_id, (received.get(msg.item_id) || 0) + int16.length / 24);
      const data = toFloat(int16, msg.item_id, ctx.sampleRate);
      n.port.postMessage({ type: "chunk", item: msg.item_id, data }, [data.buffer]);
      show();
    } else if (msg.type === "end") {
      if (node) node.port.postMessage({ type: "end", item: msg.item_id });
    } else if (msg.type === "flush") {
      if (node) node.port.postMessage({ type: "flush" });
      resamplers.clear();
    }
  });
  enable.addEventListener("click", async () => { await resumeAudio(); show(); });
  const off = onAudioState(show);
  show();
  return () => { off(); if (node) { node.disconnect(); node = null; } };
}

export default { render };

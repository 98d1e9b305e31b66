// The call bar: Connect/Disconnect, Interrupt, mic mode, mute, level meter, push-to-talk, a file as the mic.
// Captured audio is downsampled in an AudioWorklet to 24 kHz PCM16 and sent to the kernel in batch_ms
// batches as binary buffers with a sequence number. (audio_context.js is prepended to this module.)

const CAPTURE_WORKLET = `
class VoicelabCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.ratio = sampleRate / 24000;           // input samples per output sample
    this.batch = Math.max(1, Math.round(24000 * (o.batchMs || 40) / 1000));
    this.out = new Int16Array(this.batch);
    this.n = 0;
    this.acc = 0; this.cnt = 0; this.phase = 0; // box-average decimator state (ratio >= 1)
    this.prev = 0; this.t = 0;                  // linear interpolation state (ratio < 1)
    this.peak = 0; this.sum = 0; this.count = 0;
    this.port.onmessage = (e) => { if (e.data === "flush") this.flush(true); };
  }
  push(v) {
    const s = Math.max(-1, Math.min(1, v));
    this.out[this.n++] = s < 0 ? s * 32768 : s * 32767;
    const a = Math.abs(s);
    if (a > this.peak) this.peak = a;
    this.sum += s * s; this.count++;
    if (this.n >= this.batch) this.flush(false);
  }
  flush(requested) {
    const pcm = this.out.slice(0, this.n);
    const rms = this.count ? Math.sqrt(this.sum / this.count) : 0;
    this.port.postMessage(
      { pcm: pcm.buffer, samples: this.n, peak: this.peak, rms, frame: currentFrame, rate: sampleRate, requested },
      [pcm.buffer]);
    this.n = 0; this.peak = 0; this.sum = 0; this.count = 0;
  }
  process(inputs) {
    const input = inputs[0];
    const ch = input && input[0];
    if (!ch) return true;
    const r = this.ratio;
    if (r >= 1) {
      for (let i = 0; i < ch.length; i++) {
        let v = ch[i];
        if (input.length > 1) { for (let c = 1; c < input.length; c++) v += input[c][i]; v /= input.length; }
        this.acc += v; this.cnt++; this.phase += 1;
        if (this.phase >= r) { this.push(this.acc / this.cnt); this.acc = 0; this.cnt = 0; this.phase -= r; }
      }
    } else {
      for (let i = 0; i < ch.length; i++) {
        const v = ch[i];
        while (this.t <= 1) { this.push(this.prev + (v - this.prev) * this.t); this.t += r; }
        this.t -= 1; this.prev = v;
      }
    }
    return true;
  }
}
registerProcessor("voicelab-capture", VoicelabCapture);
`;

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  if (text !== undefined) node.textContent = text;
  return node;
}

function micProblem(error) {
  const name = error && error.name;
  if (name === "NotAllowedError" || name === "SecurityError")
    return ["permission", "Microphone permission was refused. Allow it in the browser's site settings and click Connect again, or use 'Play file as caller'."];
  if (name === "NotFoundError" || name === "OverconstrainedError")
    return ["no_device", "No microphone was found. Plug one in and click Connect again, or use 'Play file as caller'."];
  if (name === "NotReadableError")
    return ["busy", "The microphone is in use by another program or could not be opened. Close it there, or use 'Play file as caller'."];
  return ["mic_error", `The microphone could not start (${name || "error"}: ${error && error.message}). Use 'Play file as caller'.`];
}

function noMicReason() {
  if (!globalThis.isSecureContext)
    return "This page is not a secure context, so the browser offers no microphone. Open the notebook on http://localhost or https, or use 'Play file as caller'.";
  if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia))
    return "This notebook front end has no microphone API (VS Code notebooks have none). Use 'Play file as caller' to speak a WAV/FLAC file.";
  return null;
}

function render({ model, el: root }) {
  root.classList.add("voicelab-mic");
  const bar = el("div", { class: "vl-bar" });
  const connectBtn = el("button", { type: "button", class: "vl-connect" }, "Connect");
  const disconnectBtn = el("button", { type: "button" }, "Disconnect");
  const interruptBtn = el("button", { type: "button" }, "Interrupt");
  const modeSel = el("select", { "aria-label": "Microphone mode" });
  modeSel.append(el("option", { value: "open" }, "Open mic (server VAD)"), el("option", { value: "ptt" }, "Push to talk"));
  const muteBtn = el("button", { type: "button", "aria-pressed": "false" }, "Mute");
  const talkBtn = el("button", { type: "button", class: "vl-talk" }, "Hold to talk");
  const meterWrap = el("div", { class: "vl-meter", role: "meter", "aria-label": "Microphone level", "aria-valuemin": "-60", "aria-valuemax": "0", "aria-valuenow": "-60" });
  const meterBar = el("div", { class: "vl-meter-bar" });
  meterWrap.append(meterBar);
  const fileBtn = el("button", { type: "button" }, "Play file as caller");
  const fileInput = el("input", { type: "file", accept: "audio/*,.wav,.flac", "aria-label": "Audio file to play as the caller", style: "display:none" });
  const status = el("div", { class: "vl-status", role: "status", "aria-live": "polite" });
  const problem = el("div", { class: "vl-problem", role: "alert" });
  bar.append(connectBtn, disconnectBtn, interruptBtn, modeSel, muteBtn, talkBtn, meterWrap, fileBtn, fileInput);
  root.append(bar, status, problem);

  let node = null, stream = null, source = null, sink = null, micCtx = null;
  let seq = 0, held = false, releasing = false, fileTimer = null, settleUntil = 0;
  let level = -60, meterFrame = 0;

  const connected = () => model.get("session_state") === "open";
  const send = (content, buffers) => model.send(content, undefined, buffers);

  function showProblem(code, message) {
    problem.textContent = message || "";
    problem.style.display = message ? "block" : "none";
    model.set("mic_state", message ? "error" : model.get("mic_state"));
    model.set("mic_problem", message || "");
    model.save_changes();
    if (message) send({ type: "mic_problem", code, message });
  }

  // Audio captured between the Connect click and the session's open is kept (up to EARLY_MAX_SAMPLES) and
  // sent, in order, once the session is open: the caller's first words are not lost to the connect time.
  const EARLY_MAX_SAMPLES = 24000 * 10;
  let early = [], earlySamples = 0, awaitingOpen = false, sawConnecting = false;

  function sendBatch(buffer, samples, source_, capturedAt) {
    seq += 1;
    send({ type: "audio", seq, samples, rate: 24000, source: source_, captured_at: capturedAt ?? (performance.timeOrigin + performance.now()) }, [buffer]);
  }

  function micBuffer(d) {
    // muted, or settling (auto gain adapting after the mic opened): the same length of silence keeps the
    // server's clock on the call's clock
    if (model.get("muted") || performance.now() < settleUntil) return new Int16Array(d.samples).buffer;
    return d.pcm;
  }

  function keepEarly(buffer, samples) {
    early.push([buffer, samples, performance.timeOrigin + performance.now()]);
    earlySamples += samples;
    while (earlySamples > EARLY_MAX_SAMPLES && early.length) earlySamples -= early.shift()[1];
  }

  function settleEarly() {
    const state = model.get("session_state");
    if (state === "connecting") sawConnecting = true;
    if (state === "open" && awaitingOpen) {
      for (const [buffer, samples, at] of early) sendBatch(buffer, samples, "mic", at);
      early = []; earlySamples = 0; awaitingOpen = false; sawConnecting = false;
    } else if (state === "failed" || (state === "closed" && sawConnecting)) {
      early = []; earlySamples = 0; awaitingOpen = false; sawConnecting = false;
    }
  }

  function onCapture(e) {
    const d = e.data;
    const db = d.rms > 0 ? Math.max(-60, 20 * Math.log10(d.rms)) : -60;
    level = model.get("muted") ? -60 : db;
    if (!meterFrame) meterFrame = requestAnimationFrame(drawMeter);
    const ptt = model.get("mode") === "ptt";
    if (d.samples > 0 && (!ptt || held || d.requested)) {
      if (connected()) sendBatch(micBuffer(d), d.samples, "mic");
      else if (awaitingOpen && !ptt) keepEarly(micBuffer(d), d.samples);
    }
    if (releasing && d.requested) { releasing = false; send({ type: "ptt", down: false }); }
  }

  function drawMeter() {
    meterFrame = 0;
    const pct = Math.round(((level + 60) / 60) * 100);
    meterBar.style.width = `${pct}%`;
    meterWrap.setAttribute("aria-valuenow", String(Math.round(level)));
  }

  let starting = null;
  function startMic() {
    // one capture at a time: a Connect click and the kernel's "start" can both ask for it
    if (!starting) starting = openMic().finally(() => { starting = null; });
    return starting;
  }

  async function openMic() {
    if (node) return true;
    const reason = noMicReason();
    if (reason) { showProblem("no_mic_api", reason); return false; }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: constraints() });
      const track = stream.getAudioTracks()[0];
      settleUntil = performance.now() + (model.get("settle_ms") || 0); // counted from the capture's start
      reportSettings(track);
      micCtx = captureContext(track);
      const ctx = micCtx;
      if (ctx.state === "suspended") await ctx.resume();
      await loadWorklet(ctx, "voicelab-capture", CAPTURE_WORKLET);
      source = ctx.createMediaStreamSource(stream);
      node = new AudioWorkletNode(ctx, "voicelab-capture", { processorOptions: { batchMs: model.get("batch_ms") } });
      node.port.onmessage = onCapture;
      sink = ctx.createGain();
      sink.gain.value = 0; // pulled by the graph, never heard
      source.connect(node); node.connect(sink); sink.connect(ctx.destination);
      showProblem("", "");
      const settle = model.get("settle_ms") || 0;
      if (settle > 0) {
        status.textContent = `Microphone settling for ${settle} ms (sent as silence)`;
        setTimeout(() => { status.textContent = model.get("status"); }, settle);
      }
      model.set("mic_state", "on"); model.set("device_rate", ctx.sampleRate); model.save_changes();
      send({ type: "mic_started", rate: ctx.sampleRate });
      return true;
    } catch (error) {
      const [code, message] = micProblem(error);
      stopMic();
      showProblem(code, message);
      return false;
    }
  }

  function constraints() {
    return {
      echoCancellation: model.get("echo_cancellation"),
      noiseSuppression: model.get("noise_suppression"),
      autoGainControl: model.get("auto_gain"),
      channelCount: 1,
    };
  }

  function reportSettings(track) {
    const s = (track && track.getSettings) ? track.getSettings() : {};
    const granted = {};
    for (const key of ["autoGainControl", "echoCancellation", "noiseSuppression", "sampleRate", "channelCount"])
      if (s[key] !== undefined) granted[key] = s[key];
    model.set("track_settings", granted);
    model.save_changes();
  }

  async function reopenMic() {
    // the processing is fixed when a capture opens (Chromium cannot change it on a live track): re-open
    if (!node && !starting) return;
    if (starting) await starting;
    stopMic();
    await startMic();
  }
  model.on("change:auto_gain", reopenMic);
  model.on("change:echo_cancellation", reopenMic);
  model.on("change:noise_suppression", reopenMic);

  function stopMic() {
    if (stream) for (const t of stream.getTracks()) t.stop();
    if (source) source.disconnect();
    if (node) { node.port.onmessage = null; node.disconnect(); }
    if (sink) sink.disconnect();
    if (micCtx) micCtx.close().catch(() => {});
    node = stream = source = sink = micCtx = null;
    if (model.get("mic_state") === "on") { model.set("mic_state", "off"); model.save_changes(); }
  }

  async function playFile(file) {
    stopFile();
    try {
      const bytes = await file.arrayBuffer();
      const probe = new OfflineAudioContext(1, 1, 24000);
      const decoded = await probe.decodeAudioData(bytes);
      const frames = Math.max(1, Math.ceil(decoded.duration * 24000));
      const off = new OfflineAudioContext(1, frames, 24000);
      const src = off.createBufferSource();
      src.buffer = decoded; src.connect(off.destination); src.start();
      const rendered = await off.startRendering();
      const f32 = rendered.getChannelData(0);
      const pcm = new Int16Array(f32.length);
      for (let i = 0; i < f32.length; i++) { const s = Math.max(-1, Math.min(1, f32[i])); pcm[i] = s < 0 ? s * 32768 : s * 32767; }
      const step = Math.round(24000 * model.get("batch_ms") / 1000);
      const started = performance.now();
      let offset = 0;
      send({ type: "file_started", name: file.name, duration_ms: (pcm.length / 24), });
      status.textContent = `Playing ${file.name} as the caller`;
      const tick = () => {
        const due = Math.floor(((performance.now() - started) / 1000) * 24000) + step;
        while (offset < pcm.length && offset < due) {
          const chunk = pcm.slice(offset, Math.min(offset + step, pcm.length));
          offset += chunk.length;
          if (connected()) sendBatch(chunk.buffer, chunk.length, "file");
        }
        if (offset >= pcm.length) { stopFile(); send({ type: "file_done", name: file.name }); }
      };
      fileTimer = setInterval(tick, Math.max(10, model.get("batch_ms") / 2));
      tick();
    } catch (error) {
      showProblem("bad_file", `Could not play ${file.name}: ${error && error.message}. Use a WAV or FLAC file.`);
    }
  }

  function stopFile() { if (fileTimer) { clearInterval(fileTimer); fileTimer = null; } }

  connectBtn.addEventListener("click", async () => {
    try { await resumeAudio(); } catch (e) { /* no Web Audio: the file path still works */ }
    awaitingOpen = true;
    send({ type: "connect" });
    await startMic();
  });
  disconnectBtn.addEventListener("click", () => { stopFile(); stopMic(); send({ type: "disconnect" }); });
  interruptBtn.addEventListener("click", () => send({ type: "interrupt" }));
  modeSel.addEventListener("change", () => { model.set("mode", modeSel.value); model.save_changes(); });
  muteBtn.addEventListener("click", () => { model.set("muted", !model.get("muted")); model.save_changes(); });
  fileBtn.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => { if (fileInput.files && fileInput.files[0]) playFile(fileInput.files[0]); fileInput.value = ""; });
  const press = (e) => { if (model.get("mode") !== "ptt" || held) return; e.preventDefault(); held = true; talkBtn.setAttribute("aria-pressed", "true"); send({ type: "ptt", down: true }); };
  const release = () => { if (!held) return; held = false; talkBtn.setAttribute("aria-pressed", "false"); if (node) { releasing = true; node.port.postMessage("flush"); } else send({ type: "ptt", down: false }); };
  talkBtn.addEventListener("pointerdown", press);
  talkBtn.addEventListener("pointerup", release);
  talkBtn.addEventListener("pointerleave", release);
  talkBtn.addEventListener("keydown", (e) => { if (e.key === " " || e.key === "Enter") press(e); });
  talkBtn.addEventListener("keyup", (e) => { if (e.key === " " || e.key === "Enter") release(); });

  function sync() {
    const state = model.get("session_state");
    const open = state === "open";
    connectBtn.disabled = open || state === "connecting";
    disconnectBtn.disabled = !open && state !== "connecting";
    interruptBtn.disabled = !open;
    modeSel.value = model.get("mode");
    const muted = model.get("muted");
    muteBtn.textContent = muted ? "Unmute" : "Mute";
    muteBtn.setAttribute("aria-pressed", String(muted));
    talkBtn.style.display = model.get("mode") === "ptt" ? "" : "none";
    status.textContent = model.get("status");
    root.dataset.sessionState = state;
  }
  for (const name of ["session_state", "mode", "muted", "status"]) model.on(`change:${name}`, sync);
  model.on("change:session_state", settleEarly);
  model.on("msg:custom", (msg) => {
    if (msg && msg.type === "start") { if (!connected()) awaitingOpen = true; startMic(); }
    else if (msg && msg.type === "stop") { stopFile(); stopMic(); }
  });
  sync();
  const reason = noMicReason();
  if (reason) showProblem("no_mic_api", reason); else problem.style.display = "none";
  return () => { stopFile(); stopMic(); };
}

export default { render };

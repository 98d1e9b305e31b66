// Shared by mic.js and player.js (each widget module inlines this file's text at load, see widgets/_esm.py).
// The player uses one AudioContext per page at the output device's rate; the microphone one at the track's
// own rate. Never force 24 kHz (Firefox refuses to connect a microphone to a context of another rate): the
// worklets resample.
const VOICELAB_KEY = "__voicelabAudio";

function voicelabAudio() {
  let shared = globalThis[VOICELAB_KEY];
  if (!shared) {
    shared = { ctx: null, listeners: new Set() };
    globalThis[VOICELAB_KEY] = shared;
  }
  return shared;
}

function audioContext() {
  const shared = voicelabAudio();
  if (!shared.ctx || shared.ctx.state === "closed") {
    const Ctx = globalThis.AudioContext || globalThis.webkitAudioContext;
    if (!Ctx) throw new Error("this browser has no Web Audio API");
    shared.ctx = new Ctx({ latencyHint: "interactive" });
    shared.ctx.addEventListener("statechange", () => {
      for (const fn of shared.listeners) fn(shared.ctx.state);
    });
  }
  return shared.ctx;
}

async function resumeAudio() {
  const ctx = audioContext();
  if (ctx.state === "suspended") await ctx.resume();
  return ctx;
}

function onAudioState(fn) {
  const shared = voicelabAudio();
  shared.listeners.add(fn);
  return () => shared.listeners.delete(fn);
}

// A context for the microphone at the track's own rate: Firefox refuses to connect a microphone to a context
// of another rate, and the device's output rate (the shared context's) may differ from the mic's.
function captureContext(track) {
  const Ctx = globalThis.AudioContext || globalThis.webkitAudioContext;
  if (!Ctx) throw new Error("this browser has no Web Audio API");
  const settings = (track && track.getSettings && track.getSettings()) || {};
  const options = { latencyHint: "interactive" };
  if (settings.sampleRate) options.sampleRate = settings.sampleRate;
  try {
    return new Ctx(options);
  } catch (error) {
    return new Ctx({ latencyHint: "interactive" });
  }
}

const WORKLET_MODULES = new WeakMap(); // context -> Map(name -> addModule promise)

async function loadWorklet(ctx, name, code) {
  let modules = WORKLET_MODULES.get(ctx);
  if (!modules) { modules = new Map(); WORKLET_MODULES.set(ctx, modules); }
  if (!modules.has(name)) {
    const url = URL.createObjectURL(new Blob([code], { type: "application/javascript" }));
    modules.set(name, ctx.audioWorklet.addModule(url));
  }
  await modules.get(name);
}

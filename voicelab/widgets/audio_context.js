// Shared by mic.js and player.js (each widget module inlines this file's text at load, see widgets/_esm.py).
// One AudioContext per page, at the device's native rate: never force 24 kHz (Firefox refuses to connect a
// microphone to a context of another rate); the worklets resample.
const VOICELAB_KEY = "__voicelabAudio";

function voicelabAudio() {
  let shared = globalThis[VOICELAB_KEY];
  if (!shared) {
    shared = { ctx: null, modules: new Map(), listeners: new Set() };
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
    shared.modules = new Map();
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

async function loadWorklet(ctx, name, code) {
  const shared = voicelabAudio();
  if (!shared.modules.has(name)) {
    const url = URL.createObjectURL(new Blob([code], { type: "application/javascript" }));
    shared.modules.set(name, ctx.audioWorklet.addModule(url));
  }
  await shared.modules.get(name);
}

// The event log: client, server and app events as recorded (audio payloads are references), filterable,
// each expandable to its JSON. The kernel appends batches; filtering happens here.

const DIRS = { client: "\u2191 client", server: "\u2193 server", app: "\u2022 app" };

function render({ model, el: root }) {
  root.classList.add("voicelab-eventlog");
  const bar = document.createElement("div");
  const filter = document.createElement("input");
  filter.type = "search";
  filter.placeholder = "filter by type or text";
  filter.setAttribute("aria-label", "Filter events");
  bar.append(filter);
  const boxes = {};
  for (const [dir, label] of Object.entries(DIRS)) {
    const lab = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = true;
    boxes[dir] = box;
    lab.append(box, document.createTextNode(` ${label} `));
    bar.append(lab);
  }
  const audioLabel = document.createElement("label");
  const audioBox = document.createElement("input");
  audioBox.type = "checkbox";
  audioBox.checked = false;
  audioLabel.append(audioBox, document.createTextNode(" audio frames "));
  bar.append(audioLabel);
  const AUDIO_TYPES = new Set(["input_audio_buffer.append", "response.output_audio.delta"]);
  const count = document.createElement("span");
  count.style.marginLeft = "8px";
  bar.append(count);
  const list = document.createElement("div");
  list.className = "vl-events";
  list.style.maxHeight = `${model.get("height")}px`;
  list.style.overflowY = "auto";
  list.style.fontFamily = "monospace";
  list.style.fontSize = "12px";
  root.append(bar, list);

  const events = [];
  let frame = 0;

  function matches(e) {
    if (!boxes[e.dir] || !boxes[e.dir].checked) return false;
    if (!audioBox.checked && AUDIO_TYPES.has(e.type)) return false;
    const q = filter.value.trim().toLowerCase();
    return !q || e.type.toLowerCase().includes(q) || (e.summary || "").toLowerCase().includes(q);
  }

  function row(e) {
    const d = document.createElement("details");
    const s = document.createElement("summary");
    s.textContent = `${(e.t_ms / 1000).toFixed(3).padStart(8)}  ${DIRS[e.dir] || e.dir}  ${e.type}${e.summary ? "  " + e.summary : ""}`;
    d.append(s);
    d.addEventListener("toggle", () => {
      if (d.open && d.childNodes.length === 1) {
        const pre = document.createElement("pre");
        pre.textContent = e.json;
        d.append(pre);
      }
    }, { once: false });
    return d;
  }

  function redraw() {
    frame = 0;
    const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    const shown = events.filter(matches).slice(-model.get("max_rows"));
    list.replaceChildren(...shown.map(row));
    count.textContent = `${shown.length} of ${events.length} events`;
    if (stick) list.scrollTop = list.scrollHeight;
  }
  const schedule = () => { if (!frame) frame = requestAnimationFrame(redraw); };

  model.on("msg:custom", (msg) => {
    if (!msg) return;
    if (msg.type === "reset") events.length = 0;
    else if (msg.type === "events") {
      for (const e of msg.events) events.push(e);
      const keep = model.get("keep");
      if (events.length > keep) events.splice(0, events.length - keep);
    }
    schedule();
  });
  filter.addEventListener("input", schedule);
  for (const box of [...Object.values(boxes), audioBox]) box.addEventListener("change", schedule);
  schedule();
}

export default { render };

() => {
  // avdit serve's live player: the stream's bytes, as they arrive, go into a Media Source Extensions buffer, so
  // the first window plays as soon as it is here (a plain <video src> waits for a block of its own size).
  const hex = (x) => x.toString(16).padStart(2, "0");
  const codecsOf = (b) => {  // 'avc1.PPCCLL' from the avcC box of the init segment, and AAC-LC
    for (let i = 4; i + 8 < b.length; i++) {
      if (b[i] === 0x61 && b[i + 1] === 0x76 && b[i + 2] === 0x63 && b[i + 3] === 0x43) {
        return `avc1.${hex(b[i + 5])}${hex(b[i + 6])}${hex(b[i + 7])}, mp4a.40.2`;
      }
    }
    return null;
  };
  const attach = (video) => {
    if (video.dataset.attached) return;
    video.dataset.attached = "1";
    const source = new MediaSource();
    video.src = URL.createObjectURL(source);
    source.addEventListener("sourceopen", async () => {
      const reader = (await fetch(video.dataset.stream)).body.getReader();
      const queue = [];
      let buffer = null, head = new Uint8Array(0);
      const pump = () => {
        if (!buffer || buffer.updating || source.readyState !== "open") return;
        const played = video.currentTime - 30;  // keep memory flat: drop what played long ago
        if (buffer.buffered.length && buffer.buffered.start(0) < played - 30) {
          buffer.remove(0, played);
        } else if (queue.length) {
          buffer.appendBuffer(queue.shift());
        }
      };
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (!buffer) {
          const joined = new Uint8Array(head.length + value.length);
          joined.set(head); joined.set(value, head.length); head = joined;
          const codecs = codecsOf(head);
          if (!codecs) continue;
          buffer = source.addSourceBuffer(`video/mp4; codecs="${codecs}"`);
          buffer.addEventListener("updateend", pump);
          queue.push(head);
        } else {
          queue.push(value);
        }
        pump();
      }
    });
    video.play().catch(() => {});
  };
  const started = Date.now();
  const find = () => {
    const video = document.getElementById("live-video");
    if (video) attach(video);
    else if (Date.now() - started < 10000) setTimeout(find, 100);
  };
  find();
}

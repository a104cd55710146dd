// AudioWorklet: microphone → mono 10 ms blocks, each with its input-timeline start sample.
// Runs on the audio thread; it only downmixes and cuts blocks, all decisions are on the page.

class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.blockSamples = options.processorOptions.blockSamples; // 10 ms at the context rate
    this.block = new Float32Array(this.blockSamples);
    this.fill = 0;
    this.position = 0; // input-timeline sample of block[0]
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const n = channels[0].length;
    for (let i = 0; i < n; i++) {
      let v = 0;
      for (let c = 0; c < channels.length; c++) v += channels[c][i];
      this.block[this.fill++] = v / channels.length;
      if (this.fill === this.blockSamples) {
        this.port.postMessage({ start: this.position, block: this.block, frame: currentFrame }, [this.block.buffer]);
        this.position += this.blockSamples;
        this.block = new Float32Array(this.blockSamples);
        this.fill = 0;
      }
    }
    return true;
  }
}

registerProcessor("presence-capture", CaptureProcessor);

// The GLB head's name matching: which weight set a head's morph targets follow, and which
// streamed weight drives which target (three.js resolves from presence/web/node_modules).
import { test } from "node:test";
import assert from "node:assert/strict";
import { OCULUS_VISEMES, morphBindings, morphConvention } from "../../presence/web/avatar3d.js";

test("Ready Player Me viseme names and bare Oculus names both read as the Oculus set", () => {
  assert.equal(morphConvention(OCULUS_VISEMES.map((v) => `viseme_${v}`)), "oculus15");
  assert.equal(morphConvention(["sil", "PP", "aa", "oh", "eyeBlinkLeft"]), "oculus15");
});

test("ARKit mouth blendshapes read as the ARKit set, even next to a few viseme-like names", () => {
  assert.equal(morphConvention(["jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "eyeBlinkLeft"]), "arkit");
  assert.equal(morphConvention(["jawOpen", "mouthFunnel", "aa"]), "arkit");
});

test("a head with no mouth morphs is refused", () => {
  assert.equal(morphConvention(["eyeBlinkLeft", "browInnerUp"]), null);
});

test("each target is bound to the weight of the same name, prefix or not; unknown targets stay unbound", () => {
  const bindings = morphBindings(["viseme_aa", "PP", "eyeBlinkLeft", "viseme_xx"], OCULUS_VISEMES);
  assert.deepEqual([...bindings], [["viseme_aa", OCULUS_VISEMES.indexOf("aa")], ["PP", 1]]);
});

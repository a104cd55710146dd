// A GLB head (the default one, presence/web/head.glb, or the operator's), rendered with three.js (installed from the npm registry into
// presence/web/node_modules at install time and served by presence; no CDN).
//
// The head's morph targets name what they do, in one of the two conventions presence
// streams: Oculus visemes (`viseme_sil` … `viseme_ou`, the Ready Player Me naming; bare
// `sil` … `ou` also work) or ARKit blendshapes (`jawOpen`, `mouthFunnel`, …). The page asks
// the server for that weight set, so the streamed weights drive the morphs one to one, with
// no re-mapping. Blinks drive `eyeBlinkLeft`/`eyeBlinkRight` (or `eyesClosed`); expressions
// (expression.js) drive the ARKit brow, eye, cheek and mouth-corner targets the head has, and
// give way to speech on the mouth; eye nodes (`eyeLeft`/`EyeLeft`/`LeftEye` …) turn with the
// gaze; nods, the thinking tilt, breathing and the idle sway turn the whole head. Motion comes
// from motion.js, exactly as for the 2D face.

import * as THREE from "three";
import { GLTFLoader } from "three/addons/loaders/GLTFLoader.js";
import { Motion } from "./motion.js";

export const OCULUS_VISEMES = ["sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou"];
const BLINKS = ["eyeBlinkLeft", "eyeBlinkRight", "eyesClosed"];
const EYE_NODES = { left: ["eyeLeft", "EyeLeft", "LeftEye", "eye_L"], right: ["eyeRight", "EyeRight", "RightEye", "eye_R"] };

/** An expression weight on a target that speech also uses: the mouth keeps priority. */
export function blendExpression(target, speech, expression, jawOpen) {
  if (!target.startsWith("mouth")) return Math.max(speech, expression);
  return Math.max(speech, expression * (1 - 0.6 * Math.min(1, jawOpen)));
}

/** Which weight set a head's morph target names follow: "oculus15", "arkit", or null. */
export function morphConvention(names) {
  const set = new Set(names);
  const oculus = OCULUS_VISEMES.filter((v) => set.has(`viseme_${v}`) || set.has(v)).length;
  const arkit = ["jawOpen", "mouthClose", "mouthFunnel", "mouthPucker"].filter((n) => set.has(n)).length;
  if (oculus === 0 && arkit === 0) return null;
  return oculus >= arkit * 2 ? "oculus15" : "arkit";
}

/** Target name in the head → index into the streamed weights (the weight set's order). */
export function morphBindings(targetNames, weightNames) {
  const index = new Map(weightNames.map((name, i) => [name, i]));
  const bindings = new Map();
  for (const target of targetNames) {
    const name = target.startsWith("viseme_") ? target.slice("viseme_".length) : target;
    if (index.has(name)) bindings.set(target, index.get(name));
  }
  return bindings;
}

/** Physically based materials → Lambert (diffuse only): a fraction of the per-pixel cost on a
 * CPU rasteriser, and the built-in head's matte skin, hair and cloth need nothing more. Unlit
 * materials (the mouth cavity) stay as they are. */
export function toLambert(scene) {
  scene.traverse((node) => {
    const m = node.material;
    if (!node.isMesh || !m || !m.isMeshStandardMaterial) return;
    node.material = new THREE.MeshLambertMaterial({ color: m.color, side: m.side, name: m.name });
    m.dispose();
  });
}

export class GlbAvatar {
  /** Loads `url` into `canvas`; rejects with a readable message when the file is unusable. */
  static async load(canvas, url, { lambert = false } = {}) {
    const gltf = await new GLTFLoader().loadAsync(url);
    if (lambert) toLambert(gltf.scene);
    return new GlbAvatar(canvas, gltf.scene);
  }

  constructor(canvas, scene) {
    this.canvas = canvas;
    this.motion = new Motion();
    this.meshes = [];
    scene.traverse((node) => {
      if (node.isMesh && node.morphTargetDictionary) this.meshes.push(node);
    });
    const names = this.meshes.flatMap((m) => Object.keys(m.morphTargetDictionary));
    this.weightSet = morphConvention(names);
    if (this.weightSet === null) {
      throw new Error("the GLB head has no Oculus viseme or ARKit mouth morph targets");
    }
    this.bound = null; // weight-name list the bindings were made for
    this.bindings = [];
    this.eyes = [EYE_NODES.left, EYE_NODES.right]
      .map((names) => names.map((n) => scene.getObjectByName(n)).find(Boolean))
      .filter(Boolean);
    this.eyeRest = this.eyes.map((eye) => eye.rotation.clone());
    this.weightsShown = {}; // target name → influence drawn at the last frame (tests read it)

    // No MSAA: on a machine without a GPU (SwiftShader) it costs more than the whole head
    // (presence bench frametime); the head's silhouettes are soft enough without it.
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: false, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(1);
    this.renderer.setSize(canvas.width, canvas.height, false);
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0x1d2430);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x404050, 2.0));
    const key = new THREE.DirectionalLight(0xffffff, 1.5);
    key.position.set(1, 2, 3);
    this.scene.add(key);
    this.head = new THREE.Group();
    this.head.add(scene);
    this.scene.add(this.head);

    // Frame the head: centre it and fit its height into the view.
    const box = new THREE.Box3().setFromObject(scene);
    const size = box.getSize(new THREE.Vector3());
    const centre = box.getCenter(new THREE.Vector3());
    scene.position.sub(centre);
    this.unit = Math.max(size.x, size.y) / 360; // motion.js works in a 360-unit-wide design space
    this.camera = new THREE.PerspectiveCamera(30, canvas.width / canvas.height, 0.01, 1000);
    const distance = (Math.max(size.y, size.x * (canvas.height / canvas.width)) * 0.6) / Math.tan((15 * Math.PI) / 180);
    this.camera.position.set(0, 0, distance + size.z);
    this.camera.lookAt(0, 0, 0);
  }

  gesture(name, atMs, durationMs = 600) {
    this.motion.gesture(name, atMs, durationMs);
  }

  setState(state) {
    this.motion.setState(state);
  }

  #bind(weightNames) {
    if (this.bound === weightNames) return;
    this.bound = weightNames;
    this.bindings = this.meshes.map((mesh) => morphBindings(Object.keys(mesh.morphTargetDictionary), weightNames));
  }

  /** One frame at `nowMs`: the streamed `weights` (in the order of `weightNames`, or null in
   * silence) drive the morphs directly; `pose` (mouth.js), which the 2D face draws, is unused. */
  render(pose, nowMs, weightNames = [], weights = null, expression = {}) {
    this.#bind(weightNames);
    const m = this.motion.frame(nowMs);
    const shown = {};
    this.meshes.forEach((mesh, i) => {
      const influences = mesh.morphTargetInfluences;
      const dictionary = mesh.morphTargetDictionary;
      influences.fill(0);
      if (weights) {
        for (const [target, w] of this.bindings[i]) influences[dictionary[target]] = Math.min(1, Math.max(0, weights[w] ?? 0));
      }
      const jaw = "jawOpen" in dictionary ? influences[dictionary.jawOpen] : pose.jaw;
      for (const [target, value] of Object.entries(expression)) {
        if (target in dictionary) {
          const k = dictionary[target];
          influences[k] = Math.min(1, blendExpression(target, influences[k], value, jaw));
        }
      }
      for (const blink of BLINKS) {
        if (blink in dictionary) influences[dictionary[blink]] = Math.max(m.blink, influences[dictionary[blink]] * (1 - m.blink));
      }
      if (!weights && "viseme_sil" in dictionary) influences[dictionary.viseme_sil] = 1;
      for (const [name, k] of Object.entries(dictionary)) shown[name] = Math.max(shown[name] ?? 0, influences[k]);
    });
    this.weightsShown = shown;
    this.eyes.forEach((eye, i) => {
      const rest = this.eyeRest[i];
      eye.rotation.set(rest.x - 0.28 * m.gazeY, rest.y + 0.38 * m.gazeX, rest.z);
    });
    this.head.position.set(m.swayX * this.unit, -m.swayY * this.unit * 0.5, 0);
    this.head.rotation.set(0.12 * m.nod + 0.05 * m.think, 0.04 * Math.sin(nowMs / 2900) + 0.03 * m.gazeX * m.think, -m.tilt);
    this.renderer.render(this.scene, this.camera);
  }
}

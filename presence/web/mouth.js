// Weights of a named weight set → one mouth pose the avatar draws.
//
// A pose is a handful of articulatory parameters in [0, 1]: jaw drop, lip rounding, lip
// spread, lip closure (p/b/m), lower lip tucked under the teeth (f/v), tongue tip (th) and
// how much teeth show. Oculus visemes map to poses by a table (jaw follows the reference
// openness in docs VISEMES.md); ARKit blendshapes map by their meaning.

export const POSE_KEYS = ["jaw", "round", "wide", "close", "tuck", "tongue", "teeth"];

export const REST = Object.freeze({ jaw: 0, round: 0, wide: 0, close: 0, tuck: 0, tongue: 0, teeth: 0 });

const V = (jaw, more = {}) => ({ ...REST, jaw, ...more });
export const OCULUS_POSES = Object.freeze({
  sil: V(0),
  PP: V(0, { close: 1 }),
  FF: V(0.15, { tuck: 1, teeth: 0.9 }),
  TH: V(0.2, { tongue: 1, teeth: 0.6 }),
  DD: V(0.25, { wide: 0.3, teeth: 0.7 }),
  kk: V(0.3, { wide: 0.2, teeth: 0.4 }),
  CH: V(0.25, { round: 0.5, teeth: 0.8 }),
  SS: V(0.15, { wide: 0.5, teeth: 1 }),
  nn: V(0.25, { wide: 0.2, teeth: 0.5 }),
  RR: V(0.3, { round: 0.6, teeth: 0.3 }),
  aa: V(1, { wide: 0.2, teeth: 0.3 }),
  E: V(0.6, { wide: 0.6, teeth: 0.5 }),
  ih: V(0.45, { wide: 0.7, teeth: 0.6 }),
  oh: V(0.7, { round: 0.8 }),
  ou: V(0.35, { round: 1 }),
});

function fromOculus(names, weights) {
  const pose = { ...REST };
  let total = 0;
  for (let i = 0; i < names.length; i++) total += weights[i] ?? 0;
  const scale = total > 1 ? 1 / total : 1;
  for (let i = 0; i < names.length; i++) {
    const shape = OCULUS_POSES[names[i]];
    const w = (weights[i] ?? 0) * scale;
    if (!shape || !w) continue;
    for (const key of POSE_KEYS) pose[key] += w * shape[key];
  }
  return pose;
}

function fromArkit(names, weights) {
  const w = Object.fromEntries(names.map((name, i) => [name, weights[i] ?? 0]));
  const avg = (a, b) => ((w[a] ?? 0) + (w[b] ?? 0)) / 2;
  const press = avg("mouthPressLeft", "mouthPressRight");
  const roll = avg("mouthRollLower", "mouthRollUpper");
  return {
    jaw: w.jawOpen ?? 0,
    round: Math.max(w.mouthFunnel ?? 0, w.mouthPucker ?? 0),
    wide: Math.max(avg("mouthSmileLeft", "mouthSmileRight"), avg("mouthStretchLeft", "mouthStretchRight")),
    close: Math.min(1, Math.max(w.mouthClose ?? 0, press, roll)),
    tuck: w.mouthRollLower ?? 0,
    tongue: w.tongueOut ?? 0,
    teeth: Math.min(1, avg("mouthUpperUpLeft", "mouthUpperUpRight") + avg("mouthLowerDownLeft", "mouthLowerDownRight")),
  };
}

/** Pose for `weights` (array-like, in the order of `names`) of weight set `setName`. */
export function poseFromWeights(setName, names, weights) {
  if (weights === null || weights === undefined) return { ...REST };
  const pose = setName === "arkit" ? fromArkit(names, weights) : fromOculus(names, weights);
  for (const key of POSE_KEYS) pose[key] = Math.min(1, Math.max(0, pose[key]));
  return pose;
}

/** How open the lips are: jaw drop, unless the lips are pressed shut. */
export function openness(pose) {
  return pose.jaw * (1 - pose.close);
}

import type { DetectorName } from "../anomaly-config.js";
import { canary } from "./canary.js";
import { credentialMisuse } from "./credential-misuse.js";
import { denialSpike } from "./denial-spike.js";
import type { DetectorFactory } from "./detector.js";
import { newNetwork } from "./new-network.js";
import { scopeProbe } from "./scope-probe.js";
import { volumeSpike } from "./volume-spike.js";

export const DETECTOR_FACTORIES: Record<DetectorName, DetectorFactory> = {
  denial_spike: denialSpike,
  new_network: newNetwork,
  volume_spike: volumeSpike,
  scope_probe: scopeProbe,
  credential_misuse: credentialMisuse,
  canary,
};

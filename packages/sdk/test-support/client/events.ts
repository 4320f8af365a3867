import type { KeywardEvents } from "../../src/client/emitter.js";
import type { Keyward } from "../../src/client/keyward.js";

/** The next `event` the client emits. */
export function nextEvent<E extends keyof KeywardEvents>(kw: Keyward, event: E): Promise<KeywardEvents[E]> {
  return new Promise((resolve) => {
    const listener = (payload: KeywardEvents[E]) => {
      kw.off(event, listener);
      resolve(payload);
    };
    kw.on(event, listener);
  });
}

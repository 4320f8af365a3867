import { expect } from "vitest";
import { KeywardError } from "../src/errors.js";

/** Awaits `p`, which must reject with a KeywardError of `code`; answers that error. */
export async function expectCode(p: Promise<unknown>, code: string): Promise<KeywardError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KeywardError);
  expect((err as KeywardError).code).toBe(code);
  return err as KeywardError;
}

export type { VerifiedToken } from "./claims.js";
export type { VerifyAlgorithm } from "./compact.js";
export { JwksUnavailableError, type TokenErrorCode, TokenVerificationError } from "./errors.js";
export { expressMiddleware } from "./middleware/express.js";
export { type FastifyReplyLike, type FastifyRequestLike, fastifyHook } from "./middleware/fastify.js";
export { type HonoContextLike, honoMiddleware, type KeywardHonoEnv } from "./middleware/hono.js";
export { nodeMiddleware } from "./middleware/node.js";
export type { ErrorBody, MiddlewareOptions } from "./middleware/shared.js";
export { type Verifier, type VerifierOptions, verifier } from "./verifier.js";

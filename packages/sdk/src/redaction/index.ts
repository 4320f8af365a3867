export { createRedactor, DEFAULT_MARKER, type RedactionStream, type Redactor } from "./streaming-redactor.js";

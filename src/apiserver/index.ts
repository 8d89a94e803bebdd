// The API server's public surface: the handler chain (ApiServer), the HTTP(S)
// adapter, the assembled secured server, and the types a caller needs.
// docs/kubernetes-api.md describes what is served.
export { ApiServer } from './server.ts';
export type { AdmissionPlugin, ApiServerOptions, Authenticator, Authorizer, ReviewProvider, ServiceAccountTokenIssuer } from './server.ts';
export { serve, requestBodyBytesMax } from './http/adapter.ts';
export type { Served, ServeOptions } from './http/adapter.ts';
export type { ApiRequest, ApiResponse } from './http/request.ts';
export { ChunkStream } from './http/stream.ts';
export { startStandalone } from './standalone.ts';
export type { Standalone, StandaloneOptions } from './standalone.ts';
export { builtinResources } from './resources/index.ts';
export type { KObject, ResourceDef } from './resources/types.ts';
export { StatusError, errors, isStatusError } from './errors.ts';

// Prometheus metrics of one API server (a private prom-client registry, so
// several servers in one process do not collide).
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export class ApiMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'apiserver_request_total', help: 'Counter of apiserver requests broken out for each verb, group, version, resource and HTTP response code.', labelNames: ['verb', 'group', 'version', 'resource', 'subresource', 'code'], registers: [this.registry] });
  readonly latency = new Histogram({ name: 'apiserver_request_duration_seconds', help: 'Response latency distribution in seconds for each verb, group, version, resource and subresource.', labelNames: ['verb', 'group', 'version', 'resource', 'subresource'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [this.registry] });
  readonly inflight = new Gauge({ name: 'apiserver_current_inflight_requests', help: 'Number of requests in flight (watches excluded).', registers: [this.registry] });
  readonly watchers = new Gauge({ name: 'apiserver_registered_watchers', help: 'Number of currently registered watchers for a given resource.', labelNames: ['group', 'version', 'resource'], registers: [this.registry] });
  readonly cacheObjects = new Gauge({ name: 'apiserver_watch_cache_objects', help: 'Objects held in the watch cache of a resource.', labelNames: ['group', 'resource'], registers: [this.registry] });
  readonly cacheRevision = new Gauge({ name: 'apiserver_watch_cache_resource_version', help: 'The store revision the watch cache of a resource has seen.', labelNames: ['group', 'resource'], registers: [this.registry] });
}

// Generated protocol types and service descriptors. Regenerate with `npm run gen`; never edit gen/.

export * as health from './gen/grpc/health/v1/health_pb.ts';
export * from './gen/sluice/v1/admin_pb.ts';
export * from './gen/sluice/v1/types_pb.ts';
export * from './gen/sluice/v1/worker_pb.ts';

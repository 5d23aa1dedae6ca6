// The job life cycle as operators drive it. Workers move jobs between pending, running and failed through the
// worker service (next issue); operators move them with these commands. Anything else is a
// FailedPrecondition that names the current state and what is allowed.
import { JobState } from '@sluice/proto';

export type JobStateName = 'created' | 'pending' | 'running' | 'paused' | 'failed' | 'stopped';
export type JobCommand = 'start' | 'pause' | 'resume' | 'stop' | 'delete';

/** command → states it is allowed from, and the state it leads to (delete removes the job). */
export const JOB_TRANSITIONS: Readonly<
  Record<JobCommand, { from: readonly JobStateName[]; to: JobStateName | null }>
> = {
  start: { from: ['created', 'stopped'], to: 'pending' },
  pause: { from: ['pending', 'running'], to: 'paused' },
  resume: { from: ['paused', 'failed'], to: 'pending' },
  stop: { from: ['pending', 'running', 'paused', 'failed'], to: 'stopped' },
  delete: { from: ['created', 'stopped', 'failed', 'paused'], to: null },
};

export type TransitionCheck = { ok: true; to: JobStateName | null } | { ok: false; message: string };

export function checkTransition(command: JobCommand, from: JobStateName): TransitionCheck {
  const rule = JOB_TRANSITIONS[command];
  if (rule.from.includes(from)) return { ok: true, to: rule.to };
  return {
    ok: false,
    message: `can't ${command} a job that is ${from}; ${command} is allowed from ${rule.from.join(', ')}`,
  };
}

export const JOB_STATE_VALUES: Readonly<Record<JobStateName, JobState>> = {
  created: JobState.CREATED,
  pending: JobState.PENDING,
  running: JobState.RUNNING,
  paused: JobState.PAUSED,
  failed: JobState.FAILED,
  stopped: JobState.STOPPED,
};

export function jobStateName(value: JobState): JobStateName | undefined {
  return (Object.entries(JOB_STATE_VALUES) as Array<[JobStateName, JobState]>).find(
    ([, v]) => v === value,
  )?.[0];
}

// A background job that runs `tick` every `intervalMs` (measured from the end of the
// previous run, so runs never overlap) until stopped; stop() waits for a run in progress.
export interface Job {
  stop(): Promise<void>;
}

export function startPeriodic(intervalMs: number, tick: (stopped: () => boolean) => Promise<void>): Job {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick(() => stopped).finally(schedule);
    }, intervalMs);
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

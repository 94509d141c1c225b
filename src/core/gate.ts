// A counting gate: at most `limit` tasks run at once, the others wait their turn in
// arrival order. Long polls pass their claims through one so that a crowd of them
// (10,000 clients re-issuing `wait: 20` polls) can never fill the connection pool's
// queue ahead of sends and acks: they hold at most `limit` of its connections, and
// waiting here is not waiting in the pool (whose connection timeout answers 503).
// A few lines, so no dependency for it (p-limit does the same).

export interface Gate {
  run<T>(task: () => Promise<T>): Promise<T>;
}

export function createGate(limit: number): Gate {
  let running = 0;
  const queue: (() => void)[] = [];
  return {
    async run(task) {
      if (running < limit) running++;
      else await new Promise<void>((ok) => queue.push(ok)); // the finishing task hands its slot over
      try {
        return await task();
      } finally {
        const next = queue.shift();
        if (next) next();
        else running--;
      }
    },
  };
}

// The container work of the installer, through the Docker Engine API (dockerode).
// Mailcow's containers are found by their Compose labels, not by name: names differ
// between Compose v1 (_1) and v2 (-1), the labels do not.
import { PassThrough, type Writable } from 'node:stream';
import type Dockerode from 'dockerode';

export interface ContainerRef {
  readonly id: string;
  readonly name: string;
}

export interface ExecResult {
  readonly exitCode: number;
  readonly output: string;
}

export interface Engine {
  /** The running container of a Compose service (`stopped`: also a stopped one), or null. */
  findService(project: string, service: string, opts?: { stopped?: boolean }): Promise<ContainerRef | null>;
  exec(container: ContainerRef, cmd: readonly string[]): Promise<ExecResult>;
  /** Runs `cmd` with its stdout (bytes) written to `stdout`; returns the exit code and stderr. */
  execTo(container: ContainerRef, cmd: readonly string[], stdout: Writable): Promise<ExecResult>;
  /** A tar stream of `path` in the container (as `docker cp` reads it). */
  readTar(container: ContainerRef, path: string): Promise<NodeJS.ReadableStream>;
  /** Unpacks the tar `archive` into the directory `path` of the container. */
  writeTar(container: ContainerRef, path: string, archive: Buffer | NodeJS.ReadableStream): Promise<void>;
  start(container: ContainerRef): Promise<void>;
  stop(container: ContainerRef): Promise<void>;
  restart(container: ContainerRef): Promise<void>;
  imageExists(tag: string): Promise<boolean>;
  /** Builds `tag` from the repository; `files` are the context entries, .dockerignore applies. */
  buildImage(contextDir: string, files: readonly string[], dockerfile: string, tag: string): Promise<void>;
  /** Stops and removes every container of a Compose service; returns how many. */
  removeService(project: string, service: string): Promise<number>;
}

/** Runs `cmd` in the container, stdout into `stdout`; stderr comes back as `output`. */
async function execWith(
  docker: Dockerode,
  container: ContainerRef,
  cmd: readonly string[],
  stdout: Writable,
): Promise<ExecResult> {
  const exec = await docker.getContainer(container.id).exec({ Cmd: [...cmd], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const stderr: Buffer[] = [];
  const errSink = new PassThrough();
  errSink.on('data', (c: Buffer) => stderr.push(c));
  docker.modem.demuxStream(stream, stdout, errSink);
  await new Promise<void>((ok, fail) => {
    stream.on('end', ok);
    stream.on('close', ok);
    stream.on('error', fail);
  });
  const info = await exec.inspect();
  return { exitCode: info.ExitCode ?? -1, output: Buffer.concat(stderr).toString('utf8') };
}

const labelFilter = (project: string, service: string): string =>
  JSON.stringify({ label: [`com.docker.compose.project=${project}`, `com.docker.compose.service=${service}`] });

export function dockerEngine(docker: Dockerode): Engine {
  return {
    async findService(project, service, opts = {}) {
      const list = await docker.listContainers({ all: opts.stopped, filters: labelFilter(project, service) });
      const c = list.find((x) => x.State === 'running') ?? (opts.stopped ? list[0] : undefined);
      return c ? { id: c.Id, name: (c.Names[0] ?? c.Id).replace(/^\//, '') } : null;
    },

    async exec(container, cmd) {
      const sink = new PassThrough();
      const chunks: Buffer[] = [];
      sink.on('data', (c: Buffer) => chunks.push(c));
      const { exitCode, output } = await execWith(docker, container, cmd, sink);
      return { exitCode, output: Buffer.concat(chunks).toString('utf8') + output };
    },

    execTo: (container, cmd, stdout) => execWith(docker, container, cmd, stdout),

    async readTar(container, path) {
      return docker.getContainer(container.id).getArchive({ path });
    },

    async writeTar(container, path, archive) {
      await docker.getContainer(container.id).putArchive(archive, { path });
    },

    async start(container) {
      await docker.getContainer(container.id).start();
    },

    async stop(container) {
      await docker.getContainer(container.id).stop();
    },

    async restart(container) {
      await docker.getContainer(container.id).restart();
    },

    async imageExists(tag) {
      return docker
        .getImage(tag)
        .inspect()
        .then(
          () => true,
          () => false,
        );
    },

    async buildImage(contextDir, files, dockerfile, tag) {
      const stream = await docker.buildImage({ context: contextDir, src: [...files] }, { t: tag, dockerfile });
      await new Promise<void>((ok, fail) => {
        docker.modem.followProgress(stream, (err: Error | null, out: Array<{ error?: string }>) => {
          const failed = err ?? out.find((o) => o.error);
          if (failed) fail(failed instanceof Error ? failed : new Error(`image build failed: ${failed.error}`));
          else ok();
        });
      });
    },

    async removeService(project, service) {
      const list = await docker.listContainers({ all: true, filters: labelFilter(project, service) });
      for (const c of list) {
        const container = docker.getContainer(c.Id);
        if (c.State === 'running') await container.stop();
        await container.remove();
      }
      return list.length;
    },
  };
}

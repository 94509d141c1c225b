// Refusals of the installer: shown to the admin as one clear line, exit code 1,
// and raised before anything is changed (or after a rollback).
export class InstallError extends Error {
  override readonly name = 'InstallError';
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
  }
}

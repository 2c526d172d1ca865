/** Secrets for tasks and for the API's keys. */
export interface Secrets {
  /**
   * The secret's value.
   *
   * @throws {SecretNotFoundError} it does not exist or is not readable.
   */
  get(name: string): Promise<string>;
}

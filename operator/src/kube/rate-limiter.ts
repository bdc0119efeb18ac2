/**
 * A token bucket shared by every request of the process, as client-go's QPS and burst: a storm of
 * rotations is paced instead of hitting the API server all at once. Reservations may run the bucket
 * below zero, so callers are served in order and each waits for its own token.
 */
export class TokenBucket {
  readonly #qps: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(qps: number, burst: number, now: () => number = () => performance.now()) {
    if (!(qps > 0) || !(burst >= 1))
      throw new RangeError(`rate limit needs qps > 0 and burst >= 1, not ${qps}/${burst}`);
    this.#qps = qps;
    this.#burst = burst;
    this.#now = now;
    this.#tokens = burst;
    this.#last = now();
  }

  /** Milliseconds the caller must wait for its token (0 when one is free); the token is taken. */
  reserve(): number {
    this.#refill();
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.#qps) * 1000;
  }

  /**
   * The API server said to come back later (429 with Retry-After): no request of this process goes
   * out before then (requests already waiting for a token keep their turn). Later requests queue
   * behind the pause in order, as they do behind a spent burst.
   */
  pauseFor(ms: number): void {
    this.#refill();
    this.#tokens = Math.min(this.#tokens, -(ms * this.#qps) / 1000);
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) * this.#qps) / 1000);
    this.#last = now;
  }

  async take(): Promise<void> {
    const wait = this.reserve();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

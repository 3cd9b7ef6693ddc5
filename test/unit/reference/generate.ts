/** A small seeded generator of image references (valid and broken), for property tests. */
import { rng } from '../../helpers/rng.js';

export { rng };

export class Gen {
  private readonly r: () => number;
  constructor(seed: number) {
    this.r = rng(seed);
  }
  int(max: number): number {
    return Math.floor(this.r() * max);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  chance(p: number): boolean {
    return this.r() < p;
  }
  chars(alphabet: string, min: number, max: number): string {
    let s = '';
    const n = min + this.int(max - min + 1);
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
  component(): string {
    const alnum = 'abcdefghijklmnopqrstuvwxyz0123456789';
    let s = this.chars(alnum, 1, 8);
    while (this.chance(0.3)) s += this.pick(['.', '_', '__', '-', '--']) + this.chars(alnum, 1, 6);
    return s;
  }
  host(): string {
    return this.pick([
      'docker.io', 'index.docker.io', 'registry-1.docker.io', 'ghcr.io', 'quay.io', 'registry.k8s.io', 'gcr.io',
      'public.ecr.aws', 'mcr.microsoft.com', 'localhost', 'localhost:5000', 'example.com', 'Example.COM',
      'my-registry.internal:443', '10.0.0.1:5000', '[::1]:5000', 'registry.krisalee.dev.joona.fr', 'm.example',
    ]);
  }
  tag(): string {
    return this.chars('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_', 1, 1) + this.chars('abcdefgXYZ0123456789_.-', 0, 20);
  }
  digest(): string {
    return this.chance(0.8) ? 'sha256:' + this.chars('0123456789abcdef', 64, 64) : 'sha512:' + this.chars('0123456789abcdef', 128, 128);
  }
  /** A reference that is valid by construction (unless the name is too long, which is rare and checked). */
  validReference(): string {
    const parts: string[] = [];
    const n = 1 + this.int(4);
    for (let i = 0; i < n; i++) parts.push(this.component());
    let name = parts.join('/');
    if (this.chance(0.6)) name = `${this.host()}/${name}`;
    if (this.chance(0.6)) name += `:${this.tag()}`;
    if (this.chance(0.3)) name += `@${this.digest()}`;
    return name;
  }
  /**
   * A first path component the mirror's router could take for a registry host: dots, colons, `localhost`,
   * uppercase, near misses. Valid Docker Hub namespaces among them are the dangerous ones.
   */
  hostileComponent(): string {
    const c = this.component();
    return this.pick([
      `${c}.${this.component()}`, `${c}.io`, 'ghcr.io', 'docker.io', 'index.docker.io', 'registry-1.docker.io', 'evil.example', 'localhost',
      'localhostx', `x${c}localhost`, 'localhost:5000', `${c}:443`, `${c.toUpperCase()}.example`, 'MyReg', 'myreg', '127.0.0.1', c,
    ]);
  }
  /** A reference whose first component after the registry (or the whole name) starts with a hostile component. */
  hostileReference(): string {
    const prefix = this.pick(['', 'docker.io/', 'index.docker.io/', 'registry-1.docker.io/', 'ghcr.io/', 'localhost/', 'MyReg/']);
    const rest = Array.from({ length: 1 + this.int(3) }, () => this.component()).join('/');
    let name = `${prefix}${this.hostileComponent()}/${rest}`;
    if (this.chance(0.5)) name += `:${this.tag()}`;
    if (this.chance(0.2)) name += `@${this.digest()}`;
    return name;
  }
  /** A reference with one random mutation, usually invalid. */
  mutated(): string {
    const s = this.validReference();
    const i = this.int(s.length + 1);
    const insert = this.pick(['', 'A', ':', '@', '/', '//', ' ', '-', '.', '_', '!', 'é', ':-', '@sha256:']);
    return s.slice(0, i) + insert + s.slice(i + this.int(3));
  }
}

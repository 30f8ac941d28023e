/**
 * Option words as every `vfio-sim` subcommand reads them: `--name value` or `--name=value`
 * (the same two forms for every option of every command), and one message for a missing value.
 */

/** An option word split at its first `=`: `--seed=2` is `--seed` with the value `2`. */
export interface OptionWord {
  readonly name: string;
  /** The `=value` part, or undefined when the word has none. */
  readonly inline: string | undefined;
}

/** Splits `--name=value`; any other word (a file name, `-h`, `--json`) comes back whole. */
export function splitOption(word: string): OptionWord {
  const eq = word.indexOf("=");
  if (word.startsWith("--") && eq > 2) return { name: word.slice(0, eq), inline: word.slice(eq + 1) };
  return { name: word, inline: undefined };
}

/**
 * Reads argv one option at a time. `value()` returns the current option's value (its
 * `=value`, else the next word) or null when there is none.
 */
export class OptionCursor {
  private i = -1;
  private word: OptionWord = { name: "", inline: undefined };

  constructor(private readonly argv: readonly string[]) {}

  /** The next word, or null at the end. */
  next(): OptionWord | null {
    if (++this.i >= this.argv.length) return null;
    this.word = splitOption(this.argv[this.i]);
    return this.word;
  }

  /** The current option's value, or null when it has none (the caller reports `needsValue`). */
  value(): string | null {
    if (this.word.inline !== undefined) return this.word.inline;
    if (this.i + 1 >= this.argv.length) return null;
    return this.argv[++this.i];
  }
}

/** The message for an option given without its value. */
export const needsValue = (name: string): string => `option ${name} needs a value`;

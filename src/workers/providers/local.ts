/**
 * The offline default: a deterministic analyzer that needs no network and no key, so that Tranche
 * does useful work out of the box and tests and benchmarks have a provider with stable output.
 */
import { countTextTokens } from "../../tokens";
import { LOCAL_MODEL } from "./models";
import type { AnalysisRequest, AnalysisResult, Provider } from "./provider";

type Language = "en" | "fr" | "de" | "es";

// Frequent function words, chosen to differ between the languages so that counting them tells the language apart.
const LANGUAGE_WORDS: Record<Language, ReadonlySet<string>> = {
  en: new Set(
    "the and of to in is that it was for on are with as this be at by from have has not but or which an they were been their will would there can its we he she you".split(" "),
  ),
  fr: new Set(
    "le la les des et est une un du dans que qui pour pas sur au aux avec ce cette il elle sont par plus ne se son sa ses nous vous ils été être mais où".split(" "),
  ),
  de: new Set(
    "der die das und ist nicht ein eine einen dem den des zu mit von auf für sich auch es im sie wir ich werden wird wurde sind war bei nach aus oder aber wie noch".split(" "),
  ),
  es: new Set(
    "el los las del y es una por con para que se su sus lo como más pero al fue son está han ha este esta entre sobre también muy sin ya cuando".split(" "),
  ),
};

const STOP_WORDS: ReadonlySet<string> = new Set([
  ...Object.values(LANGUAGE_WORDS).flatMap((words) => [...words]),
  ..."a i me my our your his her them what when where who whom how why do does did had may might must shall should could can't don't also such these those than then into about more most some any all no yes so if out up just only other over very own same too each few both here once after before while because being having doing its it's one two new said".split(" "),
]);

// Title abbreviations whose period does not end a sentence.
const ABBREVIATION = /\b(?:Mr|Mrs|Ms|Dr|Prof|Sr|Jr|St|Inc|Ltd|Co|Corp|vs|etc|e\.g|i\.e|No|Fig)\.$/i;
// Lower-case words that may sit inside a name: "Bank of England", "Charles de Gaulle".
const NAME_CONNECTORS: ReadonlySet<string> = new Set(["of", "de", "du", "la", "von", "van", "der", "del", "da", "di"]);
const MAX_ENTITIES_PER_TYPE = 25;

const EMAIL = /[\w.+-]+@[\w-]+(?:\.[\w-]+)+/g;
const URL_PATTERN = /\b(?:https?:\/\/|www\.)[^\s<>"')\]]+[^\s<>"')\].,;:!?]/g;
const MONTH = "(?:January|February|March|April|May|June|July|August|September|October|November|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept?|Oct|Nov|Dec)\\.?";
const PATTERNS: [EntityType, RegExp][] = [
  ["email", EMAIL],
  ["url", URL_PATTERN],
  [
    "date",
    new RegExp(
      `\\b(?:\\d{4}-\\d{2}-\\d{2}|\\d{1,2}/\\d{1,2}/\\d{2,4}|${MONTH} \\d{1,2}(?:st|nd|rd|th)?(?:,? \\d{4})?|\\d{1,2}(?:st|nd|rd|th)? (?:of )?${MONTH},? \\d{4}|${MONTH} \\d{4})\\b`,
      "g",
    ),
  ],
  [
    "money",
    /(?:[$€£¥]\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:million|billion|trillion|thousand|bn|m|k)\b)?|\b(?:USD|EUR|GBP|CHF|JPY)\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:million|billion|trillion|thousand|bn)\b)?|\b\d[\d,]*(?:\.\d+)?\s?(?:(?:million|billion|thousand) )?(?:USD|EUR|GBP|CHF|JPY|dollars|euros|pounds)\b)/gi,
  ],
];

type EntityType = "name" | "email" | "url" | "date" | "money";

/** One entity found in the text, with how often it occurs. */
export interface LocalEntity {
  text: string;
  type: EntityType;
  count: number;
}

/** What the offline analyzer returns as a task's output. */
export interface LocalAnalysis {
  analyzer: "tranche-local";
  note: string;
  document: string;
  language: Language | "other";
  /** The three best-scoring sentences, in the document's order. */
  summary: string;
  keywords: string[];
  entities: LocalEntity[];
  readability: { words: number; sentences: number; averageSentenceLength: number; fleschReadingEase: number | null };
}

/** The offline provider. It ignores `outputSchema` (its output has a fixed shape) and the model. */
export function createLocalProvider(): Provider {
  return {
    name: "local",
    model: LOCAL_MODEL,
    billed: false,
    async analyze(req: AnalysisRequest): Promise<AnalysisResult> {
      req.signal?.throwIfAborted();
      const text = [...req.chunks].sort((a, b) => a.index - b.index).map((c) => c.text).join("\n\n");
      const output = analyzeText(req.documentName, text);
      return {
        output,
        // No provider is asked: the tokens are what the text would have cost, for comparison.
        requests: 0,
        inputTokens: countTextTokens(`${req.instructions}\n\n${text}`),
        cachedInputTokens: 0,
        cacheWriteTokens: 0,
        outputTokens: countTextTokens(JSON.stringify(output)),
        attempts: 1,
        model: LOCAL_MODEL,
        provider: "local",
        strategy: "single",
      };
    },
  };
}

/** The whole offline analysis of one text; a pure function. */
export function analyzeText(documentName: string, text: string): LocalAnalysis {
  const sentences = splitSentences(text);
  const words = sentences.flatMap(wordsOf);
  const frequencies = new Map<string, number>();
  for (const word of words) {
    const w = word.toLowerCase();
    if (isContentWord(w)) frequencies.set(w, (frequencies.get(w) ?? 0) + 1);
  }
  return {
    analyzer: "tranche-local",
    note: "Offline analysis by Tranche's built-in analyzer; no LLM was called.",
    document: documentName,
    language: guessLanguage(words),
    summary: summarize(sentences, frequencies),
    keywords: [...frequencies].sort(([a, x], [b, y]) => y - x || a.localeCompare(b)).slice(0, 10).map(([w]) => w),
    entities: [...names(sentences), ...PATTERNS.flatMap(([type, pattern]) => matches(type, pattern, text))],
    readability: readability(words, sentences.length),
  };
}

/** Paragraphs first (headings end without a period), then sentence ends followed by a capital. */
function splitSentences(text: string): string[] {
  return text
    .split(/\n\s*\n/)
    .flatMap((paragraph) => {
      const parts = paragraph.replace(/\s+/g, " ").trim().split(/(?<=[.!?…]["'”’)]?) (?=["'“‘(]?[\p{Lu}\p{N}])/u);
      const merged: string[] = [];
      for (const part of parts) {
        const last = merged.length - 1;
        if (last >= 0 && ABBREVIATION.test(merged[last] ?? "")) merged[last] += ` ${part}`;
        else merged.push(part);
      }
      return merged;
    })
    .filter((s) => wordsOf(s).length > 0);
}

/** Words, leaving out addresses, whose pieces ("esa", "int") are not words of the text. */
function wordsOf(sentence: string): string[] {
  return sentence.replace(EMAIL, " ").replace(URL_PATTERN, " ").match(/[\p{L}\p{N}]+(?:['’.,-][\p{L}\p{N}]+)*/gu) ?? [];
}

function isContentWord(lower: string): boolean {
  return lower.length >= 3 && /\p{L}/u.test(lower) && !STOP_WORDS.has(lower);
}

function guessLanguage(words: string[]): Language | "other" {
  const counts = (Object.keys(LANGUAGE_WORDS) as Language[]).map((lang) => ({
    lang,
    count: words.filter((w) => LANGUAGE_WORDS[lang].has(w.toLowerCase())).length,
  }));
  const best = counts.sort((a, b) => b.count - a.count)[0];
  // Too few function words to tell: code, tables, lists of names, or another language.
  return best && best.count >= 2 && best.count >= 0.05 * words.length ? best.lang : "other";
}

/** Sentences scored by the frequency of their content words, damped by length so long ones do not always win. */
function summarize(sentences: string[], frequencies: Map<string, number>): string {
  const top = Math.max(1, ...frequencies.values());
  const scored = sentences.map((sentence, position) => {
    const content = wordsOf(sentence).map((w) => w.toLowerCase()).filter(isContentWord);
    const sum = content.reduce((acc, w) => acc + (frequencies.get(w) ?? 0) / top, 0);
    return { sentence, position, score: content.length === 0 ? 0 : sum / Math.sqrt(content.length), long: wordsOf(sentence).length >= 4 };
  });
  // Headings and fragments make poor summaries; use them only when there is nothing else.
  const candidates = scored.some((s) => s.long) ? scored.filter((s) => s.long) : scored;
  return candidates
    .sort((a, b) => b.score - a.score || a.position - b.position)
    .slice(0, 3)
    .sort((a, b) => a.position - b.position)
    .map((s) => s.sentence)
    .join(" ");
}

/**
 * Runs of two or more capitalised words in prose sentences (headings are all capitals). A sentence's
 * first word is left out, as its capital says nothing; punctuation ends a run ("Paris, London").
 */
function names(sentences: string[]): LocalEntity[] {
  const found: string[] = [];
  for (const sentence of sentences.filter((s) => /[.!?…]["'”’)]?$/.test(s))) {
    let run: string[] = [];
    const flush = () => {
      while (run.length > 0 && NAME_CONNECTORS.has(run[run.length - 1] ?? "")) run.pop();
      if (run.length >= 2) found.push(run.join(" "));
      run = [];
    };
    sentence.split(" ").forEach((token, i) => {
      const unopened = token.replace(/^["'“‘([]+/, "");
      const word = unopened.replace(/[.,;:!?"'”’)\]]+$/, "").replace(/['’]s$/, "");
      if (unopened !== token) flush();
      if (i > 0 && /^\p{Lu}[\p{L}’'-]*$/u.test(word)) run.push(word);
      else if (run.length > 0 && NAME_CONNECTORS.has(word)) run.push(word);
      else flush();
      if (word !== unopened) flush();
    });
    flush();
  }
  return counted("name", found);
}

function matches(type: EntityType, pattern: RegExp, text: string): LocalEntity[] {
  return counted(type, text.match(pattern) ?? []);
}

/** Distinct texts by count, then by first occurrence. */
function counted(type: EntityType, texts: string[]): LocalEntity[] {
  const counts = new Map<string, number>();
  for (const t of texts) counts.set(t, (counts.get(t) ?? 0) + 1);
  return [...counts]
    .map(([text, count]) => ({ text, type, count }))
    .sort((a, b) => b.count - a.count)
    .slice(0, MAX_ENTITIES_PER_TYPE);
}

function readability(words: string[], sentences: number): LocalAnalysis["readability"] {
  const syllables = words.reduce((acc, w) => acc + syllableCount(w), 0);
  const averageSentenceLength = sentences === 0 ? 0 : words.length / sentences;
  return {
    words: words.length,
    sentences,
    averageSentenceLength: Math.round(averageSentenceLength * 100) / 100,
    // Flesch's formula is calibrated for English; for other languages it is only a rough guide.
    fleschReadingEase:
      words.length === 0 ? null : Math.round((206.835 - 1.015 * averageSentenceLength - 84.6 * (syllables / words.length)) * 10) / 10,
  };
}

/** Vowel groups, less a silent final e: the usual approximation, good to a syllable or so. */
function syllableCount(word: string): number {
  const w = word.toLowerCase().replace(/[^a-zà-ÿ]/g, "");
  if (w.length <= 3) return 1;
  const groups = w.replace(/(?:[^laeiouy]es|[^laeiouy]ed|[^laeiouy]e)$/, "").replace(/^y/, "").match(/[aeiouyà-ÿ]+/g);
  return Math.max(1, groups?.length ?? 0);
}

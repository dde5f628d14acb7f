// The offline analyzer: deterministic output with real summary sentences, keywords, entities, language and readability from sample texts.
import { countTokens } from "gpt-tokenizer";
import { analyzeText, createLocalProvider, type LocalAnalysis } from "../src/workers/providers/local";

const SAMPLE = `Annual Report

The European Space Agency announced on March 5, 2024 that its new probe will launch from French Guiana. According to Dr. Maria Lopez, the mission costs $1.2 billion and will study the atmosphere of Venus. The probe was built in Toulouse by engineers from the Bank of England's former staff. Contact press@esa.int or visit https://www.esa.int/venus for details.

Scientists at the European Space Agency expect the probe to reach Venus in 2031. The atmosphere of Venus is thick and hot, and the probe will measure the atmosphere with three instruments. Funding of EUR 300 million came from member states, said Josef Aschbacher on 2024-03-05.`;

const request = (text: string, extra = {}) => ({
  instructions: "Analyse this document.",
  documentName: "esa.txt",
  chunks: [{ index: 0, text }],
  ...extra,
});

describe("local provider", () => {
  const provider = createLocalProvider();

  it("gives the same output for the same input", async () => {
    const first = await provider.analyze(request(SAMPLE));
    const second = await createLocalProvider().analyze(request(SAMPLE));
    expect(JSON.stringify(second)).toBe(JSON.stringify(first));
  });

  it("extracts a summary, keywords, entities, language and readability", async () => {
    const result = await provider.analyze(request(SAMPLE));
    const output = result.output as LocalAnalysis;
    expect(output.analyzer).toBe("tranche-local");
    expect(output.note).toBe("Offline analysis by Tranche's built-in analyzer; no LLM was called.");
    expect(output.language).toBe("en");
    expect(output.summary).toBe(
      "The European Space Agency announced on March 5, 2024 that its new probe will launch from French Guiana. " +
        "Scientists at the European Space Agency expect the probe to reach Venus in 2031. " +
        "The atmosphere of Venus is thick and hot, and the probe will measure the atmosphere with three instruments.",
    );
    expect(output.keywords).toHaveLength(10);
    expect(output.keywords.slice(0, 3)).toEqual(["probe", "atmosphere", "venus"]);
    for (const stop of ["the", "and", "will", "from"]) expect(output.keywords).not.toContain(stop);
    expect(output.keywords).not.toContain("esa"); // a piece of an address, not a word of the text
    expect(output.entities).toEqual([
      { text: "European Space Agency", type: "name", count: 2 },
      { text: "French Guiana", type: "name", count: 1 },
      { text: "Maria Lopez", type: "name", count: 1 },
      { text: "Bank of England", type: "name", count: 1 },
      { text: "Josef Aschbacher", type: "name", count: 1 },
      { text: "press@esa.int", type: "email", count: 1 },
      { text: "https://www.esa.int/venus", type: "url", count: 1 },
      { text: "March 5, 2024", type: "date", count: 1 },
      { text: "2024-03-05", type: "date", count: 1 },
      { text: "$1.2 billion", type: "money", count: 1 },
      { text: "EUR 300 million", type: "money", count: 1 },
    ]);
    expect(output.readability).toEqual({ words: 103, sentences: 8, averageSentenceLength: 12.88, fleschReadingEase: expect.any(Number) });
    expect(output.readability.fleschReadingEase).toBeGreaterThan(40);
    expect(output.readability.fleschReadingEase).toBeLessThan(90);
    expect(result).toMatchObject({ attempts: 1, model: "tranche-local", provider: "local" });
    expect(result.inputTokens).toBe(countTokens(`Analyse this document.\n\n${SAMPLE}`));
    expect(result.outputTokens).toBe(countTokens(JSON.stringify(output)));
  });

  it("joins chunks in index order and ignores an output schema", async () => {
    const [head, tail] = [SAMPLE.slice(0, 400), SAMPLE.slice(400)];
    const chunked = await provider.analyze({
      ...request(""),
      chunks: [
        { index: 1, text: tail },
        { index: 0, text: head },
      ],
      outputSchema: { type: "object", required: ["title"] },
    });
    expect(chunked.output).toEqual(analyzeText("esa.txt", `${head}\n\n${tail}`));
    expect((chunked.output as LocalAnalysis).analyzer).toBe("tranche-local");
  });

  it("guesses French, German, Spanish and other", () => {
    expect(analyzeText("fr", "Le chat est sur la table. Il dort dans la maison avec les enfants et ne veut pas sortir.").language).toBe("fr");
    expect(analyzeText("de", "Der Hund ist nicht im Haus. Er wird mit den Kindern auf die Straße gehen und sich freuen.").language).toBe("de");
    expect(analyzeText("es", "El perro está en la casa con los niños. Es muy feliz y fue al parque para jugar con sus amigos.").language).toBe("es");
    expect(analyzeText("code", "const x = 1; function f(a, b) { return a * b; }").language).toBe("other");
  });

  it("copes with an empty document", () => {
    const output = analyzeText("empty.txt", "");
    expect(output).toMatchObject({ summary: "", keywords: [], entities: [], language: "other" });
    expect(output.readability).toEqual({ words: 0, sentences: 0, averageSentenceLength: 0, fleschReadingEase: null });
  });

  it("refuses to start when the request is already cancelled", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(provider.analyze(request(SAMPLE, { signal: controller.signal }))).rejects.toMatchObject({ name: "AbortError" });
  });
});

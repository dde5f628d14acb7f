export { costOf, priceFor, type ModelInfo, type ModelOverrides, type TokenUsage } from "./cost";
export {
  BUILTIN_MODELS,
  createPriceTable,
  loadPriceTable,
  modelEntrySchema,
  PriceFileError,
  priceFileSchema,
  priceSchema,
  readPriceFile,
  type ModelEntry,
  type Price,
  type PriceTable,
} from "./price-table";
export { createPricingResolver, type BatchPricing, type PricedAnalysis, type PricingConfig, type PricingResolver } from "./batch-pricing";

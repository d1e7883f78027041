/** A console document as the console sends it: its trusted-document id (the SHA-256 of its
 * file, as in mobile_contracts/manifest.json), typed by its result and variables (generated
 * into src/gql by `npm run codegen`). The text itself never travels. */
export interface Doc<TResult, TVariables> {
  readonly id: string;
  readonly name: string;
  readonly kind: "query" | "mutation" | "subscription";
  /** Never set: carries the types. */
  readonly __types?: (variables: TVariables) => TResult;
}

export type ResultOf<D> = D extends Doc<infer R, unknown> ? R : never;
export type VariablesOf<D> = D extends Doc<unknown, infer V> ? V : never;

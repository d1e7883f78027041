import type { CodegenConfig } from "@graphql-codegen/cli";

// Types of the console's documents, from the committed schema the apps are checked against.
const config: CodegenConfig = {
  schema: "../mobile_contracts/schema.graphql",
  documents: ["src/**/*.graphql"],
  silent: true,
  generates: {
    "src/gql/types.ts": {
      plugins: ["typescript-operations"],
      config: {
        enumsAsTypes: true,
        avoidOptionals: { field: true, inputValue: false, object: true },
        scalars: {
          ID: "string",
          Date: "string",
          DateTime: "string",
          Decimal: "string",
          Long: "number",
          JSON: "unknown",
          Upload: "File",
        },
      },
    },
  },
};
export default config;

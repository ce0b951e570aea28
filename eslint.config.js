import js from "@eslint/js"
import tseslint from "typescript-eslint"

export default tseslint.config(
  { ignores: ["node_modules", "reports", ".sandbox", "bench/results", "bench/.build", "dist"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-syntax": [
        "error",
        {
          selector: "CallExpression[callee.object.name='process'][callee.property.name='exit']",
          message: "Only the CLI entry decides the exit code (NodeRuntime.runMain)."
        }
      ]
    }
  },
  {
    files: ["test/**/*.ts"],
    rules: {
      "no-restricted-properties": [
        "error",
        { object: "it", property: "only", message: "No focused tests." },
        { object: "it", property: "skip", message: "No skipped tests." },
        { object: "describe", property: "only", message: "No focused tests." },
        { object: "describe", property: "skip", message: "No skipped tests." }
      ]
    }
  }
)

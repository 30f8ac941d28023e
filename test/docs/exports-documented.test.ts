import { join } from "node:path";
import ts from "typescript";

// Issue 14: every export of the package's entry point has a doc comment (typedoc's pages
// are only as good as these). Members of the `uapi` and `iommufdUapi` namespaces are the
// kernel's header constants, documented in groups; they are not counted here.
test("every export of src/index.ts has a doc comment", () => {
  const entry = join(__dirname, "../../src/index.ts");
  const program = ts.createProgram([entry], { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, strict: true, types: [] });
  const checker = program.getTypeChecker();
  const mod = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  const exports = checker.getExportsOfModule(mod);
  expect(exports.length).toBeGreaterThan(150);
  const undocumented = exports
    .filter((s) => {
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
      if (target.flags & ts.SymbolFlags.ValueModule) return false; // namespaces: their module comment
      return ts.displayPartsToString(target.getDocumentationComment(checker)).trim() === "";
    })
    .map((s) => s.name)
    .sort();
  expect(undocumented).toEqual([]);
});

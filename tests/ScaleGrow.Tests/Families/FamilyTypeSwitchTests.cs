using System.Text.RegularExpressions;
using ScaleGrow.Models;
using ScaleGrow.Tests.Infrastructure;

namespace ScaleGrow.Tests.Families;

/// <summary>
/// Issue 19: what differs between model families lives in one family file each (<see cref="IModelFamily"/>, found
/// through <see cref="ModelFamilies"/>). A type switch or type test on a family's spec or model type anywhere else in
/// core/ or cli/ (<c>is CnnSpec</c>, <c>case TransformerSpec</c>, a switch arm, a cast, <c>as DecoderModel</c>) is a
/// second place a new family would have to be added, so this test fails on one. The family types are the registered
/// families' spec and model types, so a new family is covered without editing the test.
/// </summary>
public class FamilyTypeSwitchTests
{
    /// <summary>The family implementation files, where the family's own types may be tested: the families
    /// themselves and the folders of their spec and model code.</summary>
    private static readonly string[] FamilyFolders =
    [
        "ScaleGrow.Core/Families/", "ScaleGrow.Core/Models/Cnn/", "ScaleGrow.Core/Models/Transformer/",
        "ScaleGrow.Core/Models/Decoder/",
    ];

    /// <summary>Sites still switching on a family outside its files: none (keep it that way).</summary>
    private static readonly (string Folder, string Fragment)[] PendingSites = [];

    /// <summary>Type tests on one of <paramref name="types"/> in <paramref name="source"/>: (line, text).</summary>
    internal static List<(int Line, string Text)> TypeTests(string source, IEnumerable<string> types)
    {
        string names = string.Join("|", types.Select(Regex.Escape));
        string type = $@"(?:[A-Za-z_][\w]*\.)*(?:{names})\b";
        var pattern = new Regex(
            $@"\b(?:is|as|case|or|and)\s+(?:not\s+)?{type}" + // is / as / case / or / and T
            $@"|^\s*{type}[^;]*?=>" +                        // switch arm "T t => …"
            $@"|\(\s*{type}\s*\)\s*[\w(@]" +                 // cast (T)x
            $@"|OfType<\s*{type}\s*>",                       // OfType<T>
            RegexOptions.Multiline);
        var lines = source.Split('\n');
        var found = new List<(int, string)>();
        for (int i = 0; i < lines.Length; i++)
        {
            string text = lines[i].Trim();
            if (text.StartsWith("//", StringComparison.Ordinal) || text.StartsWith('['))
                continue;
            if (pattern.IsMatch(lines[i])) found.Add((i + 1, text));
        }
        return found;
    }

    /// <summary>The spec and model types of every registered family, by simple name.</summary>
    private static IReadOnlyList<string> FamilyTypeNames() =>
        ModelFamilies.All.SelectMany(f => new[] { f.SpecType.Name, f.ModelType.Name }).Distinct().ToList();

    [Fact]
    public void NoTypeSwitchOnAModelFamilyOutsideTheFamilyFiles()
    {
        string root = RepositoryRoot.Find();
        var types = FamilyTypeNames();
        Assert.Contains("CnnSpec", types);
        Assert.Contains("DecoderModel", types);
        var offenders = new List<string>();
        var pendingSeen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var top in new[] { "core", "cli" })
        {
            string folder = Path.Combine(root, top);
            foreach (var file in Directory.EnumerateFiles(folder, "*.cs", SearchOption.AllDirectories))
            {
                string relative = Path.GetRelativePath(folder, file).Replace('\\', '/');
                if (relative.Contains("/obj/", StringComparison.Ordinal) ||
                    relative.Contains("/bin/", StringComparison.Ordinal))
                    continue;
                if (FamilyFolders.Any(f => relative.StartsWith(f, StringComparison.Ordinal))) continue;
                foreach (var (line, text) in TypeTests(File.ReadAllText(file), types))
                {
                    var pending = PendingSites.FirstOrDefault(p =>
                        relative.StartsWith(p.Folder, StringComparison.Ordinal) &&
                        text.Contains(p.Fragment, StringComparison.Ordinal));
                    if (pending.Fragment is not null) pendingSeen.Add(pending.Fragment);
                    else offenders.Add($"{top}/{relative}:{line}: {text}");
                }
            }
        }
        var stale = PendingSites.Select(p => p.Fragment).Where(f => !pendingSeen.Contains(f)).ToList();
        Assert.True(offenders.Count == 0,
            "type switches on a model family outside its family file (ask ModelFamilies.For(spec) instead):\n" +
            string.Join("\n", offenders));
        Assert.True(stale.Count == 0,
            "pending sites that are gone (remove them from PendingSites):\n" + string.Join("\n", stale));
    }

    [Fact]
    public void TheCheckFindsEveryFormOfTypeTestAndIgnoresDeclarationsAndComments()
    {
        const string source = """
            if (spec is CnnSpec cnn) Grow(cnn);
            var d = model as Models.Decoder.DecoderModel;
            case TransformerSpec { Modality: TransformerModality.Image } vit:
                CnnSpec { InputChannels: 3 } or TransformerSpec { InputChannels: 3 } => "cifar10",
            var m = (CnnModel)exported.Module;
            if (model is not CnnModel) return;
            public static CnnModel Fuse(CnnModel model)
            // a comment about spec is CnnSpec
            [JsonDerivedType(typeof(Cnn.CnnSpec), "cnn")]
            private static CnnSpec Spec(ArchitectureSpec spec) => Parse(spec);
            var n = nameof(CnnSpec) + "s";
            """;
        var found = TypeTests(source, ["CnnSpec", "CnnModel", "TransformerSpec", "DecoderModel"]);
        Assert.Equal([1, 2, 3, 4, 5, 6], found.Select(f => f.Line).ToArray());
    }
}

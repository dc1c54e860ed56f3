using ScaleGrow.Data.Text;

namespace ScaleGrow.Tests.Data.Text;

public sealed class WordPieceVocabularyBuilderTests
{
    private static readonly string[] Training =
    {
        "The cat sat on the mat.", "The cat ate the rat!", "A rat sat on a hat; the hat sat on a cat.",
        "Cats and rats and hats: that is that.", "the THE The tHe",
    };

    [Fact]
    public void Build_StartsWithSpecialTokens_ThenEveryCharacterInBothForms_ThenMergedPieces()
    {
        var vocabulary = WordPieceVocabularyBuilder.Build(Training,
            new TextTokenizerOptions(VocabSize: 40, MinPairFrequency: 1));

        Assert.Equal(TextTokenizer.SpecialTokens, vocabulary.Take(5));
        var characters = Training.SelectMany(t => t.ToLowerInvariant()).Where(c => !char.IsWhiteSpace(c)).Distinct();
        // Every character seen can start a word (first letters, punctuation) or continue one ("##" form) as seen.
        foreach (char c in characters) Assert.True(vocabulary.Contains(c.ToString()) || vocabulary.Contains("##" + c));
        Assert.Contains("##t", vocabulary);
        Assert.Contains("t", vocabulary);
        Assert.Contains("the", vocabulary); // the most frequent word ends up whole
        Assert.Contains("cat", vocabulary);
        Assert.Equal(40, vocabulary.Count);
        Assert.Equal(vocabulary.Count, vocabulary.Distinct().Count());
        Assert.DoesNotContain(vocabulary.Skip(5), p => p.Any(char.IsUpper)); // lower-cased by default
    }

    [Fact]
    public void Build_IsDeterministic_AndStopsAtTheMinimumPairFrequency()
    {
        var options = new TextTokenizerOptions(VocabSize: 10_000, MinPairFrequency: 2);

        var a = WordPieceVocabularyBuilder.Build(Training, options);
        var b = WordPieceVocabularyBuilder.Build(Training.ToList(), options);

        Assert.Equal(a, b);
        Assert.True(a.Count < 10_000, "a tiny corpus runs out of pairs seen twice long before 10k pieces");
        var withSingles = WordPieceVocabularyBuilder.Build(Training, options with { MinPairFrequency = 1 });
        Assert.True(withSingles.Count > a.Count);
    }

    [Fact]
    public void Build_WithVocabularySmallerThanTheAlphabet_SaysHowManyCharactersThereAre()
    {
        var e = Assert.Throws<InvalidSpecException>(() =>
            WordPieceVocabularyBuilder.Build(Training, new TextTokenizerOptions(VocabSize: 10)));

        Assert.Contains("vocabSize 10 is smaller than the", e.Message);
    }

    /// <summary>
    /// The incremental merge loop (pair counts updated only where a merge happened, lazily re-queued heap entries)
    /// must choose exactly the merges that recounting every pair from scratch each round chooses.
    /// </summary>
    [Fact]
    public void Build_IncrementalMergeLoop_MatchesRecountingFromScratch()
    {
        var texts = GeneratedText(seed: 5, sentences: 300);
        var options = new TextTokenizerOptions(VocabSize: 400, LowerCase: false);

        var built = WordPieceVocabularyBuilder.Build(texts, options);
        var reference = ReferenceBuild(texts, options);

        Assert.Equal(reference, built);
    }

    /// <summary>Pseudo-words from a small syllable set, so pieces are shared across words and ties happen.</summary>
    internal static List<string> GeneratedText(int seed, int sentences)
    {
        var random = new Random(seed);
        string[] syllables = { "ka", "ro", "ti", "ne", "sa", "lo", "mi", "ta", "re", "on", "es", "ing" };
        var texts = new List<string>();
        for (int s = 0; s < sentences; s++)
        {
            var words = Enumerable.Range(0, random.Next(3, 9)).Select(_ => string.Concat(
                Enumerable.Range(0, random.Next(1, 4)).Select(_ => syllables[random.Next(syllables.Length)])));
            texts.Add(string.Join(' ', words) + (random.Next(3) == 0 ? "!" : "."));
        }
        return texts;
    }

    /// <summary>The textbook loop: each round recount all adjacent pairs, merge the best everywhere.</summary>
    private static List<string> ReferenceBuild(IEnumerable<string> texts, TextTokenizerOptions options)
    {
        var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var text in texts)
            foreach (var word in System.Text.RegularExpressions.Regex.Matches(text, @"\w+|[^\w\s]+").Select(m => m.Value))
                counts[word] = counts.GetValueOrDefault(word) + 1;
        var words = counts.Select(kv => (Pieces: kv.Key.Select((c, i) => i == 0 ? c.ToString() : "##" + c).ToList(),
            Count: kv.Value)).ToList();
        var vocabulary = new List<string>(TextTokenizer.SpecialTokens);
        vocabulary.AddRange(words.Select(w => w.Pieces[0]).Distinct().Order(StringComparer.Ordinal));
        vocabulary.AddRange(words.SelectMany(w => w.Pieces.Skip(1)).Distinct().Order(StringComparer.Ordinal));
        while (vocabulary.Count < options.VocabSize)
        {
            var pairs = new Dictionary<(string, string), long>();
            foreach (var (pieces, count) in words)
                for (int i = 0; i + 1 < pieces.Count; i++)
                    pairs[(pieces[i], pieces[i + 1])] = pairs.GetValueOrDefault((pieces[i], pieces[i + 1])) + count;
            if (pairs.Count == 0) break;
            var best = pairs.OrderByDescending(p => p.Value)
                .ThenBy(p => p.Key.Item1 + p.Key.Item2[2..], StringComparer.Ordinal)
                .ThenBy(p => vocabulary.IndexOf(p.Key.Item1)).ThenBy(p => vocabulary.IndexOf(p.Key.Item2)).First();
            if (best.Value < options.MinPairFrequency) break;
            var (left, right) = best.Key;
            string merged = left + right[2..];
            if (!vocabulary.Contains(merged)) vocabulary.Add(merged);
            foreach (var (pieces, _) in words)
                for (int i = 0; i + 1 < pieces.Count; i++)
                    if (pieces[i] == left && pieces[i + 1] == right)
                    {
                        pieces[i] = merged;
                        pieces.RemoveAt(i + 1);
                    }
        }
        return vocabulary;
    }
}

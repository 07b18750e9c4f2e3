#!/usr/bin/env bash
# make_bsq_corpus.sh - a small multilingual speech corpus for the BSQ demonstration run.
#
#     tools/make_bsq_corpus.sh [OUT]        (default OUT: bench-data/bsq-corpus)
#
# espeak-ng voices (6 languages x 3 voice variants = 18 "speakers"), 8 sentences each, then sox
# augmentations of every clip: clean, white noise at -30 dB, reverb, tempo 0.9 and 1.1.
# 16 kHz mono 16-bit WAV. Writes OUT/manifest.jsonl ({"path", "speaker"}; speaker = voice+variant,
# so `"split": "speaker"` holds out whole voices). sox runs with -R (repeatable random generator)
# and -D (no dither), so reruns with the same tool versions give the same bytes.
# Tools: espeak-ng 1.51, sox 14.4.2 (Debian 12). festival is not installed here, so only espeak-ng.
set -euo pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/bench-data/bsq-corpus}
mkdir -p "$OUT/wav"
: > "$OUT/manifest.jsonl.tmp"

declare -A TEXT
TEXT[en-us]="The quick brown fox jumps over the lazy dog.|She sells sea shells by the sea shore every summer.|Please call Stella and ask her to bring these things with her from the store.|A tokenizer turns a spectrogram into a short sequence of binary codes.|The weather was cold and windy, so we stayed at home and read books.|Seven hundred and forty two people attended the concert last night.|Could you repeat the last number slowly, please?|Rain in the mountains fills the rivers that run down to the valley."
TEXT[de]="Der schnelle braune Fuchs springt über den faulen Hund.|Heute ist das Wetter schön, und wir gehen im Park spazieren.|Bitte schließen Sie die Tür, wenn Sie den Raum verlassen.|Die Züge fahren jede halbe Stunde vom Hauptbahnhof ab.|Meine Großmutter backt jeden Sonntag einen Apfelkuchen.|Zweihundertdreiundvierzig Menschen kamen zu dem Vortrag.|Können Sie mir sagen, wie spät es ist?|Im Winter liegt auf den Bergen viel Schnee."
TEXT[fr-fr]="Le renard brun rapide saute par-dessus le chien paresseux.|Il fait beau aujourd'hui, nous allons nous promener au parc.|Fermez la porte s'il vous plaît quand vous quittez la pièce.|Les trains partent de la gare centrale toutes les demi-heures.|Ma grand-mère prépare une tarte aux pommes chaque dimanche.|Deux cent quarante trois personnes sont venues à la conférence.|Pouvez-vous me dire quelle heure il est?|En hiver, il y a beaucoup de neige sur les montagnes."
TEXT[es]="El rápido zorro marrón salta sobre el perro perezoso.|Hoy hace buen tiempo y vamos a pasear por el parque.|Por favor, cierre la puerta cuando salga de la habitación.|Los trenes salen de la estación central cada media hora.|Mi abuela hace una tarta de manzana todos los domingos.|Doscientas cuarenta y tres personas vinieron a la charla.|¿Puede decirme qué hora es?|En invierno hay mucha nieve en las montañas."
TEXT[it]="La volpe marrone veloce salta sopra il cane pigro.|Oggi il tempo è bello e andiamo a passeggiare nel parco.|Per favore chiuda la porta quando esce dalla stanza.|I treni partono dalla stazione centrale ogni mezz'ora.|Mia nonna prepara una torta di mele ogni domenica.|Duecentoquarantatré persone sono venute alla conferenza.|Può dirmi che ore sono?|D'inverno c'è molta neve sulle montagne."
TEXT[nl]="De snelle bruine vos springt over de luie hond.|Vandaag is het mooi weer en we wandelen in het park.|Sluit alstublieft de deur als u de kamer verlaat.|De treinen vertrekken elk half uur van het centraal station.|Mijn oma bakt elke zondag een appeltaart.|Tweehonderddrieënveertig mensen kwamen naar de lezing.|Kunt u mij zeggen hoe laat het is?|In de winter ligt er veel sneeuw op de bergen."

for lang in en-us de fr-fr es it nl; do
    IFS='|' read -r -a sentences <<< "${TEXT[$lang]}"
    for variant in m1 f2 m3; do
        voice="$lang+$variant"
        speaker="${lang}_${variant}"
        for i in "${!sentences[@]}"; do
            speed=$((150 + 10 * i % 40))
            pitch=$((40 + 7 * i % 30))
            raw="$OUT/wav/.${speaker}_$i.raw.wav"
            espeak-ng -v "$voice" -s "$speed" -p "$pitch" -w "$raw" "${sentences[$i]}"
            base="$OUT/wav/${speaker}_${i}"
            sox -R -D "$raw" -r 16000 -c 1 -b 16 "${base}_clean.wav"
            sox -R -D "$raw" -r 16000 -c 1 -b 16 "${base}_tempo09.wav" tempo 0.9
            sox -R -D "$raw" -r 16000 -c 1 -b 16 "${base}_tempo11.wav" tempo 1.1
            sox -R -D "$raw" -r 16000 -c 1 -b 16 "${base}_reverb.wav" reverb 50 50 80
            # White noise 30 dB below full scale mixed in.
            len=$(soxi -D "${base}_clean.wav")
            sox -R -D -n -r 16000 -c 1 -b 16 "$OUT/wav/.noise.wav" synth "$len" whitenoise vol 0.03
            sox -R -D -m "${base}_clean.wav" "$OUT/wav/.noise.wav" -b 16 "${base}_noise.wav"
            rm -f "$raw" "$OUT/wav/.noise.wav"
            for aug in clean tempo09 tempo11 reverb noise; do
                printf '{"path": "wav/%s_%s_%s.wav", "speaker": "%s"}\n' "$speaker" "$i" "$aug" "$speaker" \
                    >> "$OUT/manifest.jsonl.tmp"
            done
        done
    done
done
mv "$OUT/manifest.jsonl.tmp" "$OUT/manifest.jsonl"
echo "$(wc -l < "$OUT/manifest.jsonl") clips in $OUT"

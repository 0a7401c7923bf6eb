/* opcodes.h - the one list of the rules VM's opcodes.
 *
 * Included by the compiler (to emit), the VM (to execute) and the disassembler (to
 * print). Each entry is X(Name, R, Synopsis): R is a bit mask of the operands that are
 * registers (1: P1, 2: P2, 4: P3), used by the compiler to relocate registers and by
 * the disassembler; the synopsis is printed by `vigil check --explain` with P1, P2, P3
 * replaced by the operands' values.
 *
 * Values follow SPEC section 2: every operator is null when an operand is null or of
 * the wrong type (extra fields are typed at run time), and arithmetic is null when the
 * result is not finite or divides by zero. Times and durations are int64 milliseconds.
 * No opcode fails; Lower and Upper take their result bytes from the per-event arena
 * (null if it is exhausted), Matches its match data; nothing calls malloc once warm.
 * Jumps (JumpIfFalse, JumpIfTrue, Rule) only go forward.
 */
#ifndef VG_OPCODES_H
#define VG_OPCODES_H

#define VG_OPCODE_LIST(X)                                                              \
/* Opcode: Halt                                                                        \
 * Synopsis: halt                                                                      \
 * Ends the program. */                                                                \
    X(Halt, 0, "halt")                                                                 \
/* Opcode: Field P1 P2                                                                 \
 * Synopsis: r[P2]=tx.f[P1]                                                            \
 * Loads known event field number P1 (VG_FIELD_*); null when the event lacks it. */    \
    X(Field, 2, "r[P2]=tx.f[P1]")                                                      \
/* Opcode: Extra P1 P2                                                                 \
 * Synopsis: r[P2]=tx.extra(name[P1])                                                  \
 * Loads the extra event field named by constant name P1, with its JSON type. */       \
    X(Extra, 2, "r[P2]=tx.extra(name[P1])")                                            \
/* Opcode: Spec P1 P2                                                                  \
 * Synopsis: r[P2]=spec[P1]                                                            \
 * Loads the engine's value of state spec P1 for this event (phase 2). */              \
    X(Spec, 2, "r[P2]=spec[P1]")                                                       \
/* Opcode: OutSpec P1 P2                                                               \
 * Synopsis: feature[P2]=spec[P1]                                                      \
 * A feature that is exactly one spec's value, in one step. */                         \
    X(OutSpec, 0, "feature[P2]=spec[P1]")                                              \
/* Opcode: Copy P1 P2                                                                  \
 * Synopsis: r[P2]=r[P1] */                                                            \
    X(Copy, 3, "r[P2]=r[P1]")                                                          \
/* Opcode: CastNum P1 P2                                                               \
 * Synopsis: r[P2]=number(r[P1])                                                       \
 * r[P1] when it is a number, else null. */                                            \
    X(CastNum, 3, "r[P2]=number(r[P1])")                                               \
/* Opcode: CastTo P1 P2 P3                                                            \
 * Synopsis: r[P2]=r[P1] as type P3                                                    \
 * r[P1] when its type is P3 (a vg_type_t), else null: an extra field where the        \
 * checker settled one type (coalesce(tx.x, 5)). */                                    \
    X(CastTo, 3, "r[P2]=r[P1] as type P3")                                             \
/* Opcode: Add P1 P2 P3                                                                \
 * Synopsis: r[P3]=r[P1]+r[P2]                                                         \
 * Numbers. */                                                                         \
    X(Add, 7, "r[P3]=r[P1]+r[P2]")                                                     \
/* Opcode: Sub P1 P2 P3                                                                \
 * Synopsis: r[P3]=r[P1]-r[P2] */                                                      \
    X(Sub, 7, "r[P3]=r[P1]-r[P2]")                                                     \
/* Opcode: Mul P1 P2 P3                                                                \
 * Synopsis: r[P3]=r[P1]*r[P2] */                                                      \
    X(Mul, 7, "r[P3]=r[P1]*r[P2]")                                                     \
/* Opcode: Div P1 P2 P3                                                                \
 * Synopsis: r[P3]=r[P1]/r[P2]                                                         \
 * Null when r[P2] is 0. */                                                            \
    X(Div, 7, "r[P3]=r[P1]/r[P2]")                                                     \
/* Opcode: Neg P1 P2                                                                   \
 * Synopsis: r[P2]=-r[P1]                                                              \
 * Number. */                                                                          \
    X(Neg, 3, "r[P2]=-r[P1]")                                                          \
/* Opcode: NegD P1 P2                                                                  \
 * Synopsis: r[P2]=-r[P1] (duration) */                                                \
    X(NegD, 3, "r[P2]=-r[P1] (duration)")                                              \
/* Opcode: SubTT P1 P2 P3                                                              \
 * Synopsis: r[P3]=r[P1]-r[P2] (time-time=duration) */                                 \
    X(SubTT, 7, "r[P3]=r[P1]-r[P2] (time-time=duration)")                              \
/* Opcode: AddTD P1 P2 P3                                                              \
 * Synopsis: r[P3]=r[P1]+r[P2] (time+duration=time) */                                 \
    X(AddTD, 7, "r[P3]=r[P1]+r[P2] (time+duration=time)")                              \
/* Opcode: SubTD P1 P2 P3                                                              \
 * Synopsis: r[P3]=r[P1]-r[P2] (time-duration=time) */                                 \
    X(SubTD, 7, "r[P3]=r[P1]-r[P2] (time-duration=time)")                              \
/* Opcode: AddDD P1 P2 P3                                                              \
 * Synopsis: r[P3]=r[P1]+r[P2] (durations) */                                          \
    X(AddDD, 7, "r[P3]=r[P1]+r[P2] (durations)")                                       \
/* Opcode: SubDD P1 P2 P3                                                              \
 * Synopsis: r[P3]=r[P1]-r[P2] (durations) */                                          \
    X(SubDD, 7, "r[P3]=r[P1]-r[P2] (durations)")                                       \
/* Opcode: MulDN P1 P2 P3                                                              \
 * Synopsis: r[P3]=r[P1]*r[P2] (duration*number=duration)                              \
 * Rounded to the millisecond. */                                                      \
    X(MulDN, 7, "r[P3]=r[P1]*r[P2] (duration*number=duration)")                        \
/* Opcode: DivDN P1 P2 P3                                                              \
 * Synopsis: r[P3]=r[P1]/r[P2] (duration/number=duration) */                           \
    X(DivDN, 7, "r[P3]=r[P1]/r[P2] (duration/number=duration)")                        \
/* Opcode: DivDD P1 P2 P3                                                              \
 * Synopsis: r[P3]=r[P1]/r[P2] (duration/duration=number) */                          \
    X(DivDD, 7, "r[P3]=r[P1]/r[P2] (duration/duration=number)")                        \
/* Opcode: Eq P1 P2 P3                                                                 \
 * Synopsis: r[P3]=r[P1]==r[P2]                                                        \
 * Any type; null when either is null or their types differ. Strings bytewise. */      \
    X(Eq, 7, "r[P3]=r[P1]==r[P2]")                                                     \
/* Opcode: Ne P1 P2 P3                                                                 \
 * Synopsis: r[P3]=r[P1]!=r[P2] */                                                     \
    X(Ne, 7, "r[P3]=r[P1]!=r[P2]")                                                     \
/* Opcode: Lt P1 P2 P3                                                                 \
 * Synopsis: r[P3]=r[P1]<r[P2] */                                                      \
    X(Lt, 7, "r[P3]=r[P1]<r[P2]")                                                      \
/* Opcode: Le P1 P2 P3                                                                 \
 * Synopsis: r[P3]=r[P1]<=r[P2] */                                                     \
    X(Le, 7, "r[P3]=r[P1]<=r[P2]")                                                     \
/* Opcode: Gt P1 P2 P3                                                                 \
 * Synopsis: r[P3]=r[P1]>r[P2] */                                                      \
    X(Gt, 7, "r[P3]=r[P1]>r[P2]")                                                      \
/* Opcode: Ge P1 P2 P3                                                                 \
 * Synopsis: r[P3]=r[P1]>=r[P2] */                                                     \
    X(Ge, 7, "r[P3]=r[P1]>=r[P2]")                                                     \
/* Opcode: And P1 P2 P3                                                                \
 * Synopsis: r[P3]=r[P1] and r[P2]                                                     \
 * Three-valued: false if either is false, else null if either is not a bool. */       \
    X(And, 7, "r[P3]=r[P1] and r[P2]")                                                 \
/* Opcode: Or P1 P2 P3                                                                 \
 * Synopsis: r[P3]=r[P1] or r[P2]                                                      \
 * Three-valued: true if either is true, else null if either is not a bool. */         \
    X(Or, 7, "r[P3]=r[P1] or r[P2]")                                                   \
/* Opcode: Not P1 P2                                                                   \
 * Synopsis: r[P2]=not r[P1] */                                                        \
    X(Not, 3, "r[P2]=not r[P1]")                                                       \
/* Opcode: InList P1 P2 P3                                                             \
 * Synopsis: r[P3]=r[P1] in list[P2]                                                   \
 * Membership in constant list P2; null when r[P1] is null or of another type. */      \
    X(InList, 5, "r[P3]=r[P1] in list[P2]")                                            \
/* Opcode: GeoKm P1 P2 P3                                                              \
 * Synopsis: r[P3]=geo_km(r[P1],r[P1+1],r[P1+2],r[P1+3])                               \
 * Haversine distance in km on a sphere of radius 6371.0. P2 is unused. */             \
    X(GeoKm, 5, "r[P3]=geo_km(r[P1],r[P1+1],r[P1+2],r[P1+3])")                         \
/* Opcode: SecsBetween P1 P2 P3                                                        \
 * Synopsis: r[P3]=seconds_between(r[P1],r[P2])                                        \
 * (r[P2]-r[P1])/1000 for two times. */                                                \
    X(SecsBetween, 7, "r[P3]=seconds_between(r[P1],r[P2])")                            \
/* Opcode: Out P1 P2                                                                   \
 * Synopsis: feature[P2]=r[P1] */                                                      \
    X(Out, 1, "feature[P2]=r[P1]")                                                     \
/* Opcode: InX P1 P2                                                                   \
 * Synopsis: in[P2].x=r[P1] */                                                         \
    X(InX, 1, "in[P2].x=r[P1]")                                                        \
/* Opcode: InKey P1 P2                                                                 \
 * Synopsis: in[P2].key=r[P1] */                                                       \
    X(InKey, 1, "in[P2].key=r[P1]")                                                    \
/* Opcode: InKeep P1 P2                                                                \
 * Synopsis: in[P2].keep=(r[P1] is true)                                               \
 * `where` keeps only true: false and null give 0. */                                  \
    X(InKeep, 1, "in[P2].keep=(r[P1] is true)")                                        \
/* Opcode: Feat P1 P2                                                                  \
 * Synopsis: r[P2]=feature[P1]                                                         \
 * Rules (phase 3) read the features computed by phase 2. */                           \
    X(Feat, 2, "r[P2]=feature[P1]")                                                    \
/* Opcode: JumpIfFalse P1 P2                                                           \
 * Synopsis: if r[P1] is false goto P2                                                 \
 * Short-circuit of `and`: the rest cannot change a false result. */                   \
    X(JumpIfFalse, 1, "if r[P1] is false goto P2")                                     \
/* Opcode: JumpIfTrue P1 P2                                                            \
 * Synopsis: if r[P1] is true goto P2                                                  \
 * Short-circuit of `or`. */                                                           \
    X(JumpIfTrue, 1, "if r[P1] is true goto P2")                                       \
/* Opcode: Rule P1 P2 P3                                                               \
 * Synopsis: rule[P2].fired=(r[P1] is true); if not fired goto P3                      \
 * A rule fires only when its condition is true; its score is computed only then. */   \
    X(Rule, 1, "rule[P2].fired=(r[P1] is true); if not fired goto P3")                 \
/* Opcode: RuleScore P1 P2                                                             \
 * Synopsis: rule[P2].score=clamp(r[P1],0,100)                                         \
 * Null (or not a number) counts as 0. */                                              \
    X(RuleScore, 1, "rule[P2].score=clamp(r[P1],0,100)")                               \
/* Opcode: InNamed P1 P2 P3                                                            \
 * Synopsis: r[P3]=r[P1] in named list[P2]                                             \
 * Hashed membership in the list bound to declared list P2 (an unbound list is         \
 * empty); null when r[P1] is not a string. */                                         \
    X(InNamed, 5, "r[P3]=r[P1] in named list[P2]")                                     \
/* Opcode: Lower P1 P2                                                                 \
 * Synopsis: r[P2]=lower(r[P1])                                                        \
 * ASCII letters; the bytes are copied to the per-event arena. */                      \
    X(Lower, 3, "r[P2]=lower(r[P1])")                                                  \
/* Opcode: Upper P1 P2                                                                 \
 * Synopsis: r[P2]=upper(r[P1]) */                                                     \
    X(Upper, 3, "r[P2]=upper(r[P1])")                                                  \
/* Opcode: StartsWith P1 P2 P3                                                         \
 * Synopsis: r[P3]=starts_with(r[P1],r[P2]) */                                         \
    X(StartsWith, 7, "r[P3]=starts_with(r[P1],r[P2])")                                 \
/* Opcode: EndsWith P1 P2 P3                                                           \
 * Synopsis: r[P3]=ends_with(r[P1],r[P2]) */                                           \
    X(EndsWith, 7, "r[P3]=ends_with(r[P1],r[P2])")                                     \
/* Opcode: Contains P1 P2 P3                                                           \
 * Synopsis: r[P3]=contains(r[P1],r[P2]) */                                            \
    X(Contains, 7, "r[P3]=contains(r[P1],r[P2])")                                      \
/* Opcode: Matches P1 P2 P3                                                            \
 * Synopsis: r[P3]=r[P1] matches regex[P2]                                             \
 * PCRE2 compiled at compile time; match and depth limits; null when a limit is hit    \
 * or r[P1] is not a string. */                                                        \
    X(Matches, 5, "r[P3]=r[P1] matches regex[P2]")                                     \
/* Opcode: Abs P1 P2                                                                   \
 * Synopsis: r[P2]=abs(r[P1]) */                                                       \
    X(Abs, 3, "r[P2]=abs(r[P1])")                                                      \
/* Opcode: Round P1 P2 P3                                                              \
 * Synopsis: r[P3]=round(r[P1],r[P2] digits)                                           \
 * Half away from zero. */                                                             \
    X(Round, 7, "r[P3]=round(r[P1],r[P2] digits)")                                     \
/* Opcode: Log P1 P2                                                                   \
 * Synopsis: r[P2]=ln(r[P1])                                                           \
 * Null for x <= 0. */                                                                 \
    X(Log, 3, "r[P2]=ln(r[P1])")                                                       \
/* Opcode: Min2 P1 P2 P3                                                               \
 * Synopsis: r[P3]=min(r[P1],r[P2]) */                                                 \
    X(Min2, 7, "r[P3]=min(r[P1],r[P2])")                                               \
/* Opcode: Max2 P1 P2 P3                                                               \
 * Synopsis: r[P3]=max(r[P1],r[P2]) */                                                 \
    X(Max2, 7, "r[P3]=max(r[P1],r[P2])")                                               \
/* Opcode: Hour P1 P2 P3                                                               \
 * Synopsis: r[P3]=hour_of_day(r[P1]) in zone[P2]                                      \
 * 0..23, from the zone's transition table (no libc time zone state). */               \
    X(Hour, 5, "r[P3]=hour_of_day(r[P1]) in zone[P2]")                                 \
/* Opcode: Dow P1 P2 P3                                                                \
 * Synopsis: r[P3]=day_of_week(r[P1]) in zone[P2]                                      \
 * ISO: 1 Monday .. 7 Sunday. */                                                       \
    X(Dow, 5, "r[P3]=day_of_week(r[P1]) in zone[P2]")                                  \
/* Opcode: IsNull P1 P2                                                                \
 * Synopsis: r[P2]=is_null(r[P1])                                                      \
 * Never null itself. */                                                               \
    X(IsNull, 3, "r[P2]=is_null(r[P1])")                                               \
/* Opcode: Coalesce P1 P2 P3                                                           \
 * Synopsis: r[P3]=r[P1] if not null else r[P2] */                                     \
    X(Coalesce, 7, "r[P3]=r[P1] if not null else r[P2]")


typedef enum vg_opcode {
#define VG_OPCODE_ENUM(name, regs, synopsis) VG_OPC_##name,
    VG_OPCODE_LIST(VG_OPCODE_ENUM)
#undef VG_OPCODE_ENUM
    VG_OPC__COUNT
} vg_opcode_t;

#endif

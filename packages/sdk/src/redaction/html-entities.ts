/**
 * Named character references an HTML encoder may write for a character a secret holds: every
 * HTML5 name for a printable ASCII character, tab and newline, and the no-break space. (HTML5
 * has some 2,000 more, for characters a credential is unlikely to hold; a secret escaped with one
 * of those is found in its other forms only.)
 */
export const NAMED_REFERENCES: ReadonlyMap<string, string> = new Map(
  Object.entries({
    Tab: "\t",
    NewLine: "\n",
    excl: "!",
    quot: '"',
    QUOT: '"',
    num: "#",
    dollar: "$",
    percnt: "%",
    amp: "&",
    AMP: "&",
    apos: "'",
    lpar: "(",
    rpar: ")",
    ast: "*",
    midast: "*",
    plus: "+",
    comma: ",",
    period: ".",
    sol: "/",
    colon: ":",
    semi: ";",
    lt: "<",
    LT: "<",
    equals: "=",
    gt: ">",
    GT: ">",
    quest: "?",
    commat: "@",
    lsqb: "[",
    lbrack: "[",
    bsol: "\\",
    rsqb: "]",
    rbrack: "]",
    Hat: "^",
    lowbar: "_",
    UnderBar: "_",
    grave: "`",
    DiacriticalGrave: "`",
    lcub: "{",
    lbrace: "{",
    verbar: "|",
    vert: "|",
    VerticalLine: "|",
    rcub: "}",
    rbrace: "}",
    nbsp: "\u00a0",
    NonBreakingSpace: "\u00a0",
  }),
);

/** Names HTML also reads without their `;` (the legacy ones a secret's characters can need). */
export const WITHOUT_SEMICOLON = ["amp", "AMP", "lt", "LT", "gt", "GT", "quot", "QUOT", "nbsp"];
